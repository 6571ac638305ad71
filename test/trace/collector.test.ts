/**
 * The collector (`isapi-http trace`): ring then live, --json, --level, --request, and clear errors.
 */
import { ErrorCodes } from '../../src/errors.js';
import { createTraceChannel, type TraceChannel } from '../../src/trace/channel.js';
import { runTraceCollector } from '../../src/trace/collector.js';
import { formatRecord } from '../../src/trace/format.js';
import { runInRequest } from '../../src/trace/context.js';
import { collect, uniqueName, waitFor } from './helpers.js';

let channel: TraceChannel;
beforeEach(async () => {
  channel = createTraceChannel({ name: uniqueName('col') });
  await channel.ready;
});
afterEach(() => channel.close());

function fill(): void {
  channel.debug('boot details');
  runInRequest('7', () => {
    channel.info('request 7 says hi');
    channel.error(new Error('request 7 failed'));
  });
  runInRequest('8', () => channel.warn('request 8 is slow'));
  channel.info('between requests');
}

test('prints the ring, then follows live records until stopped', async () => {
  channel.info('before');
  const c = collect({ name: channel.name, json: true });
  await waitFor(() => channel.stats().collectors === 1);
  channel.info('live 1');
  channel.info('live 2');
  await waitFor(() => c.lines.length === 3);
  const result = await c.stop();
  expect(result).toMatchObject({ end: 'aborted', received: 3, printed: 3, dropped: 0 });
  expect(c.records().map((r) => r.msg)).toEqual(['before', 'live 1', 'live 2']);
  await waitFor(() => channel.stats().collectors === 0);
});

test('follow: false prints the ring and returns', async () => {
  fill();
  const c = collect({ name: channel.name, json: true, follow: false });
  expect((await c.done).end).toBe('ring');
  expect(c.lines).toHaveLength(5);
});

test('--level keeps records at that level and above', async () => {
  fill();
  const c = collect({ name: channel.name, json: true, follow: false, level: 'warn' });
  const result = await c.done;
  expect(c.records().map((r) => r.msg)).toEqual(['request 7 failed', 'request 8 is slow']);
  expect(result).toMatchObject({ received: 5, printed: 2 });
  await expect(runTraceCollector({ name: channel.name, level: 'loud' })).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
});

test('--request keeps the records of one request', async () => {
  fill();
  const c = collect({ name: channel.name, json: true, follow: false, requestId: '7' });
  await c.done;
  expect(c.records().map((r) => r.msg)).toEqual(['request 7 says hi', 'request 7 failed']);
  const both = collect({ name: channel.name, json: true, follow: false, requestId: '7', level: 'error' });
  await both.done;
  expect(both.records().map((r) => r.msg)).toEqual(['request 7 failed']);
});

test('without --json: one readable line per record, an error followed by its stack', async () => {
  fill();
  const c = collect({ name: channel.name, follow: false, level: 'error' });
  await c.done;
  expect(c.lines).toHaveLength(1);
  const text = c.lines[0] as string;
  expect(text).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z ERROR req=7 request 7 failed\n {4}Error: request 7 failed\n {8}at /);
  expect(text).toBe(formatRecord(channel.recent()[2]!));
});

test('--json lines are the records exactly as the channel holds them', async () => {
  fill();
  const c = collect({ name: channel.name, json: true, follow: false });
  await c.done;
  expect(c.records()).toEqual(JSON.parse(JSON.stringify(channel.recent())));
});

test('a stream output gets one line per record', async () => {
  fill();
  const chunks: string[] = [];
  const { Writable } = await import('node:stream');
  const output = new Writable({ write: (chunk, _enc, cb) => (chunks.push(String(chunk)), cb()) });
  await runTraceCollector({ name: channel.name, json: true, follow: false, output });
  expect(chunks.join('').split('\n')).toHaveLength(6);
});

test('the collector ends when the channel closes', async () => {
  const c = collect({ name: channel.name, json: true });
  await waitFor(() => channel.stats().collectors === 1);
  channel.info('last words');
  await channel.close();
  const result = await c.done;
  expect(result.end).toBe('closed');
  expect(c.records().map((r) => r.msg)).toEqual(['last words']);
});

test('no channel under that name: a coded error that says what to check', async () => {
  await expect(runTraceCollector({ name: uniqueName('nobody') })).rejects.toMatchObject({
    code: ErrorCodes.TRACE_UNAVAILABLE,
    message: expect.stringContaining('no channel is listening there'),
  });
});

test('past maxCollectors, a collector is refused with a coded error', async () => {
  const small = createTraceChannel({ name: uniqueName('max'), maxCollectors: 1 });
  await small.ready;
  const first = collect({ name: small.name });
  await waitFor(() => small.stats().collectors === 1);
  await expect(runTraceCollector({ name: small.name })).rejects.toMatchObject({ code: ErrorCodes.TRACE_UNAVAILABLE, message: expect.stringContaining('refused') });
  await first.stop();
  await small.close();
});
