/**
 * A slow or stalled collector never slows the writer: its backlog is bounded, the excess is dropped and counted,
 * other collectors still get everything, and the stalled one is told how much it missed once it reads again.
 */
import { createConnection, type Socket } from 'node:net';
import { createTraceChannel } from '../../src/trace/channel.js';
import type { TraceRecord } from '../../src/trace/record.js';
import { collect, uniqueName, waitFor } from './helpers.js';

const pad = 'x'.repeat(200);

function stalledClient(path: string): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = createConnection({ path }, () => resolve(socket));
    socket.pause(); // connects and never reads
  });
}

test('a stalled collector: bounded backlog, drops counted, a healthy collector unaffected, a notice on catching up', async () => {
  const channel = createTraceChannel({ name: uniqueName('bp'), maxCollectorBytes: 256 * 1024, ringSize: 10 });
  await channel.ready;
  const stalled = await stalledClient(channel.path);
  const healthy = collect({ name: channel.name, json: true });
  try {
    await waitFor(() => channel.stats().collectors === 2);
    const total = 40_000;
    let worst = 0;
    for (let batch = 0; batch < total / 1000; batch++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < 1000; i++) channel.info(`record ${batch * 1000 + i} ${pad}`);
      worst = Math.max(worst, Number(process.hrtime.bigint() - t0) / 1e6);
      // The healthy collector reads on this same thread: let it catch up between batches (one batch < its limit).
      await waitFor(() => healthy.lines.length >= (batch + 1) * 1000, 10_000, 'the healthy collector');
    }
    expect(healthy.records().map((r) => r.source)).not.toContain('channel');
    expect(healthy.lines).toHaveLength(total);
    const { dropped } = channel.stats();
    // About 9 MB went out; the stalled link held at most its 256 KiB plus what the kernel buffers, the rest dropped.
    expect(dropped).toBeGreaterThan(total / 2);
    expect(dropped).toBeLessThan(total);
    // No batch of 1000 records waited for anyone (a generous bound for a loaded machine).
    expect(worst).toBeLessThan(500);

    // The stalled collector reads again: what was buffered, then a notice with the count, then new records.
    const lines: string[] = [];
    let rest = '';
    stalled.setEncoding('utf8');
    stalled.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() as string;
      lines.push(...parts);
    });
    stalled.resume();
    await new Promise((r) => setTimeout(r, 200));
    channel.info('after the stall');
    await waitFor(() => lines.some((l) => l.includes('after the stall')), 5000, 'the record after the stall');
    const records = lines.slice(1).map((l) => JSON.parse(l) as TraceRecord);
    const notice = records.find((r) => r.source === 'channel');
    expect(notice).toMatchObject({ level: 'warn', dropped });
    expect(records.indexOf(notice as TraceRecord)).toBe(records.length - 2);
    // Every record reached the stalled collector or was counted as dropped for it.
    expect(records.length - 2).toBe(total - dropped);
  } finally {
    stalled.destroy();
    await healthy.stop();
    await channel.close();
  }
}, 60_000);

test('with no collector at all, nothing is serialised: only the ring is kept', async () => {
  const channel = createTraceChannel({ name: uniqueName('none'), ringSize: 5 });
  await channel.ready;
  const stringify = jest.spyOn(JSON, 'stringify');
  try {
    for (let i = 0; i < 1000; i++) channel.info(`r${i}`);
    expect(stringify).not.toHaveBeenCalled();
  } finally {
    stringify.mockRestore();
  }
  expect(channel.stats()).toMatchObject({ records: 1000, ring: 5, collectors: 0, dropped: 0 });
  await channel.close();
});
