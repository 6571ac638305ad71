/**
 * The ring: a fixed number of the most recent records, whatever the load, and what a late collector receives.
 */
import { createTraceChannel } from '../../src/trace/channel.js';
import { Ring } from '../../src/trace/ring.js';
import { collect, uniqueName } from './helpers.js';

test('a ring keeps the last N items, oldest first', () => {
  const ring = new Ring<number>(3);
  expect(ring.toArray()).toEqual([]);
  ring.push(1);
  ring.push(2);
  expect(ring.toArray()).toEqual([1, 2]);
  for (let i = 3; i <= 10; i++) ring.push(i);
  expect(ring.toArray()).toEqual([8, 9, 10]);
  expect(ring.size).toBe(3);
  ring.clear();
  expect(ring.toArray()).toEqual([]);
  expect(() => new Ring(0)).toThrow(expect.objectContaining({ code: 'ERR_ISAPI_INVALID_ARGUMENT' }));
});

test("the channel's ring is bounded by ringSize, and a collector that connects later gets exactly the ring", async () => {
  const channel = createTraceChannel({ name: uniqueName('ring'), ringSize: 50 });
  try {
    await channel.ready;
    for (let i = 0; i < 10_000; i++) channel.info(`line ${i}`);
    expect(channel.recent()).toHaveLength(50);
    expect(channel.recent()[0]?.msg).toBe('line 9950');
    expect(channel.recent()[49]?.msg).toBe('line 9999');
    expect(channel.stats()).toMatchObject({ records: 10_000, ring: 50 });

    const c = collect({ name: channel.name, json: true, follow: false });
    const result = await c.done;
    expect(result.end).toBe('ring');
    expect(c.records().map((r) => r.msg)).toEqual(channel.recent().map((r) => r.msg));
    expect(result.channel).toEqual({ name: channel.name, pid: process.pid });
  } finally {
    await channel.close();
  }
});

test('records below the channel level are discarded before the ring', async () => {
  const channel = createTraceChannel({ name: uniqueName('lvl'), level: 'warn', listen: false });
  channel.debug('d');
  channel.info('i');
  channel.warn('w');
  channel.error(new Error('e'));
  expect(channel.recent().map((r) => r.level)).toEqual(['warn', 'error']);
  expect(channel.recent()[1]?.err?.stack).toMatch(/Error: e\n\s+at /);
  await channel.close();
});
