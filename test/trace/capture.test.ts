/**
 * Capturing console and process.stdout / stderr: only when asked (host mode asks), counted, stacked between
 * channels, and fully undone: the very same functions are back afterwards.
 */
import { createTraceChannel, type TraceChannel } from '../../src/trace/channel.js';
import { outputCaptured } from '../../src/trace/capture.js';
import { runInRequest } from '../../src/trace/context.js';
import { uniqueName, waitFor } from './helpers.js';

const originals = () => ({ log: console.log, error: console.error, warn: console.warn, debug: console.debug, out: process.stdout.write, err: process.stderr.write });

let channels: TraceChannel[] = [];
function channel(): TraceChannel {
  const c = createTraceChannel({ name: uniqueName('cap'), listen: false });
  channels.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(channels.map((c) => c.close()));
  channels = [];
  expect(outputCaptured()).toBe(false);
});

test('creating a channel captures nothing: capture is explicit (host mode is what asks for it)', () => {
  const before = originals();
  const c = channel();
  expect(originals()).toEqual(before);
  expect(c.capturing).toBe(false);
  expect(outputCaptured()).toBe(false);
});

test('console methods and direct stream writes become records with levels; release restores the originals exactly', () => {
  const before = originals();
  const own = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);
  const ownBefore = [own(process.stdout, 'write'), own(process.stderr, 'write'), own(console, 'log'), own(console, 'error')];
  const c = channel().capture();
  expect(c.capturing).toBe(true);
  console.log('hello %s %d', 'world', 42);
  console.info({ a: 1 });
  console.debug('dbg');
  console.warn('careful');
  console.error(new Error('broken'));
  const done = jest.fn();
  expect(process.stdout.write('partial', done)).toBe(true);
  process.stdout.write(Buffer.from(' line\nnext\n'));
  process.stderr.write('from stderr\r\n');
  c.release();
  expect(originals()).toEqual(before);
  // Not only the same functions: the same own properties (an inherited method is inherited again).
  expect([own(process.stdout, 'write'), own(process.stderr, 'write'), own(console, 'log'), own(console, 'error')]).toEqual(ownBefore);
  const got = c.recent().map((r) => [r.level, r.source, r.msg.split('\n')[0]]);
  expect(got).toEqual([
    ['info', 'console', 'hello world 42'],
    ['info', 'console', '{ a: 1 }'],
    ['debug', 'console', 'dbg'],
    ['warn', 'console', 'careful'],
    ['error', 'console', 'Error: broken'],
    ['info', 'stdout', 'partial line'],
    ['warn', 'stderr', 'from stderr'],
  ]);
  expect(c.recent()[4]?.msg).toMatch(/Error: broken\n\s+at /); // the stack, as console.error prints it
  expect(c.recent()[5]?.msg).toBe('partial line\nnext');
  return new Promise<void>((resolve) => setImmediate(() => (expect(done).toHaveBeenCalled(), resolve())));
});

test('a partial line is written after a short wait, and on release', async () => {
  const c = channel().capture();
  process.stdout.write('no newline yet');
  expect(c.recent()).toHaveLength(0);
  await waitFor(() => c.recent().length === 1, 2000, 'the partial line');
  expect(c.recent()[0]?.msg).toBe('no newline yet');
  process.stderr.write('cut short');
  c.release();
  expect(c.recent()[1]).toMatchObject({ source: 'stderr', msg: 'cut short' });
});

test('capture is counted: each capture() needs its release()', () => {
  const before = originals();
  const c = channel();
  c.capture();
  c.capture();
  c.release();
  expect(c.capturing).toBe(true);
  console.log('still captured');
  c.release();
  expect(c.capturing).toBe(false);
  expect(originals()).toEqual(before);
  c.release(); // one too many: harmless
  expect(c.recent().map((r) => r.msg)).toEqual(['still captured']);
});

test('captures stack: output goes to the latest channel still holding one, then back', () => {
  const before = originals();
  const a = channel().capture();
  console.log('to a');
  const b = channel().capture();
  console.log('to b');
  b.release();
  console.log('to a again');
  a.release();
  expect(originals()).toEqual(before);
  expect(a.recent().map((r) => r.msg)).toEqual(['to a', 'to a again']);
  expect(b.recent().map((r) => r.msg)).toEqual(['to b']);
});

test('closing a capturing channel releases its capture', async () => {
  const before = originals();
  const c = channel().capture().capture();
  await c.close();
  expect(originals()).toEqual(before);
});

test('lines written while a request runs carry its id, through async continuations too', async () => {
  const c = channel().capture();
  await runInRequest('r-42', async () => {
    console.log('sync');
    await new Promise((r) => setTimeout(r, 5));
    process.stdout.write('after a timer\n');
  });
  console.log('outside');
  c.release();
  expect(c.recent().map((r) => [r.msg, r.requestId])).toEqual([
    ['sync', 'r-42'],
    ['after a timer', 'r-42'],
    ['outside', undefined],
  ]);
});

test('tee passes everything on to the original console and streams as well', () => {
  const spy = jest.fn((..._args: unknown[]) => true);
  const real = process.stdout.write;
  process.stdout.write = spy as unknown as typeof process.stdout.write;
  try {
    const c = channel().capture({ tee: true });
    process.stdout.write('both\n');
    c.release();
    expect(spy).toHaveBeenCalledWith('both\n', undefined, undefined);
    expect(c.recent().map((r) => r.msg)).toEqual(['both']);
    expect(process.stdout.write).toBe(spy);
  } finally {
    process.stdout.write = real;
  }
});

test('the capture emits capture events (what ThreadPoolHandler forwards to its workers)', () => {
  const c = channel();
  const events: boolean[] = [];
  c.on('capture', (on) => events.push(on));
  c.capture();
  c.capture();
  c.release();
  c.release();
  expect(events).toEqual([true, false]);
});
