/**
 * The rotating file sink: JSON lines, size-based rotation keeping N files, and drops (counted, then noted in the
 * file) instead of blocking when the disk is slow or the file cannot be written.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTraceChannel } from '../../src/trace/channel.js';
import { RotatingFileSink } from '../../src/trace/file-sink.js';
import type { TraceRecord } from '../../src/trace/record.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'isapi-trace-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const readLines = (file: string): TraceRecord[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TraceRecord);

test('a channel with a file appends every record as a JSON line', async () => {
  const file = join(dir, 'logs', 'trace.log'); // the directory is created
  const channel = createTraceChannel({ name: 'unused', listen: false, file });
  channel.info('one');
  channel.error(new Error('two'));
  await channel.flush();
  expect(readLines(file).map((r) => [r.level, r.msg])).toEqual([
    ['info', 'one'],
    ['error', 'two'],
  ]);
  await channel.close();
});

test('rotation by size keeps `keep` old files and deletes the oldest', async () => {
  const file = join(dir, 'trace.log');
  const channel = createTraceChannel({ name: 'unused', listen: false, file: { path: file, maxBytes: 4096, keep: 2 } });
  for (let i = 0; i < 400; i++) {
    channel.info(`line ${String(i).padStart(4, '0')} ${'y'.repeat(60)}`);
    if (i % 20 === 19) await channel.flush(); // several appends, so rotation has batches to cut between
  }
  await channel.close();
  expect(readdirSync(dir).sort()).toEqual(['trace.log', 'trace.log.1', 'trace.log.2']);
  const all = [...readLines(`${file}.2`), ...readLines(`${file}.1`), ...readLines(file)];
  for (const f of [file, `${file}.1`, `${file}.2`]) expect(readFileSync(f).length).toBeLessThanOrEqual(4096);
  // What is kept is the most recent lines, in order, none cut in half.
  const numbers = all.map((r) => Number(/line (\d+)/.exec(r.msg)?.[1]));
  expect(numbers[numbers.length - 1]).toBe(399);
  expect(numbers).toEqual(numbers.map((_, i) => (numbers[0] as number) + i));
  expect(numbers.length).toBeLessThan(400);
});

test('keep: 0 truncates in place', async () => {
  const file = join(dir, 'trace.log');
  const sink = new RotatingFileSink({ path: file, maxBytes: 1024, keep: 0 });
  for (let i = 0; i < 100; i++) {
    sink.write(`${JSON.stringify({ i, pad: 'z'.repeat(40) })}\n`);
    if (i % 10 === 9) await sink.flush();
  }
  await sink.close();
  expect(readdirSync(dir)).toEqual(['trace.log']);
  expect(readFileSync(file).length).toBeLessThanOrEqual(1024);
});

test('past maxBufferBytes, lines are dropped and counted, never queued without bound; a notice follows', async () => {
  const file = join(dir, 'trace.log');
  const sink = new RotatingFileSink({ path: file, maxBufferBytes: 8 * 1024 });
  const line = `${JSON.stringify({ msg: 'q'.repeat(100) })}\n`;
  for (let i = 0; i < 1000; i++) sink.write(line); // synchronously: the disk gets no chance in between
  expect(sink.dropped).toBeGreaterThan(900);
  await sink.flush();
  sink.write(`${JSON.stringify({ msg: 'later' })}\n`);
  await sink.close();
  const lines = readLines(file);
  expect(lines).toHaveLength(1000 - sink.dropped + 2);
  expect(lines[lines.length - 2]).toMatchObject({ source: 'channel', dropped: sink.dropped });
  expect(lines[lines.length - 1]).toMatchObject({ msg: 'later' });
});

test('a file that cannot be written: lines are dropped and the channel says why', async () => {
  const blocker = join(dir, 'not-a-dir');
  writeFileSync(blocker, '');
  const channel = createTraceChannel({ name: 'unused', listen: false, file: join(blocker, 'trace.log') });
  channel.info('lost');
  await channel.flush();
  // The line, and the notice about it (which reaches the ring and collectors, but not that file either).
  expect(channel.stats().fileDropped).toBe(2);
  expect(channel.recent().map((r) => r.msg)).toEqual(['lost', expect.stringMatching(/^trace: cannot write .*not-a-dir.*dropped for 5 s$/)]);
  await channel.close();
});
