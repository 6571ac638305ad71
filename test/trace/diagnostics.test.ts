/**
 * The opt-in hooks for the library's own error reporting (`channel.onError`, `channel.onPoolError`), and host
 * mode's channel management (startHostTrace): shared per name, captured while held, closed by its last user.
 */
import { existsSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { SimpleHandler } from '../../src/handlers/simple-handler.js';
import { outputCaptured } from '../../src/trace/capture.js';
import { createTraceChannel } from '../../src/trace/channel.js';
import { runInRequest } from '../../src/trace/context.js';
import { attachTrace, startHostTrace } from '../../src/trace/host-trace.js';
import { inject } from '../../src/testing/inject.js';
import { uniqueName } from './helpers.js';

test('channel.onError fits every onError option: an error record with the request and the stack', async () => {
  const channel = createTraceChannel({ name: 'unused', listen: false });
  const res = await inject(
    () => {
      throw new Error('from the app');
    },
    '/x',
    { onError: channel.onError },
  );
  expect(res.statusCode).toBe(500);
  runInRequest('99', () => channel.onError('a plain string'));
  const [first, second] = channel.recent();
  expect(first).toMatchObject({ level: 'error', kind: 'app', method: 'GET', url: '/x', msg: 'GET /x failed: from the app' });
  expect(first?.err?.stack).toMatch(/Error: from the app\n\s+at /);
  expect(second).toMatchObject({ msg: 'a plain string', requestId: '99', err: { message: 'a plain string' } });
  channel.onError(new Error('no request'), undefined as unknown as IncomingMessage);
  expect(channel.recent()[2]).toMatchObject({ msg: 'no request', method: undefined });
  await channel.close();
});

test('channel.onPoolError takes ThreadPoolHandler reports, worker stacks sent as strings included', async () => {
  const channel = createTraceChannel({ name: 'unused', listen: false });
  channel.onPoolError('Error: boom\n    at app (file:///app.mjs:3:9)', { kind: 'app', worker: 1 });
  channel.onPoolError(new Error('worker 0 exited with code 3'), { kind: 'crash', worker: 0 });
  expect(channel.recent()).toEqual([
    expect.objectContaining({ level: 'error', kind: 'app', workerIndex: 1, handler: 'threadpool', msg: 'worker 1 app: Error: boom', err: { message: 'Error: boom', stack: 'Error: boom\n    at app (file:///app.mjs:3:9)' } }),
    expect.objectContaining({ level: 'error', kind: 'crash', workerIndex: 0, msg: 'worker 0 crash: worker 0 exited with code 3' }),
  ]);
  await channel.close();
});

describe("host mode's channel", () => {
  const saved = process.env.APP_POOL_ID;
  afterEach(() => {
    if (saved === undefined) delete process.env.APP_POOL_ID;
    else process.env.APP_POOL_ID = saved;
    expect(outputCaptured()).toBe(false);
  });

  test('named after APP_POOL_ID, shared by the extensions of one process, captured while held, closed by the last', async () => {
    process.env.APP_POOL_ID = uniqueName('Pool');
    const a = startHostTrace(undefined);
    const b = startHostTrace({ ringSize: 5 }); // same name: the same channel
    expect(a?.channel).toBe(b?.channel);
    const channel = a!.channel;
    expect(channel.name).toBe(process.env.APP_POOL_ID);
    await channel.ready;
    expect(outputCaptured()).toBe(true);
    a!.stop();
    a!.stop(); // idempotent
    expect(channel.capturing).toBe(true);
    b!.stop();
    expect(channel.capturing).toBe(false);
    await new Promise((r) => channel.once('close', () => r(null)));
    if (process.platform !== 'win32') expect(existsSync(channel.path)).toBe(false);
  });

  test('false: none; a channel given, or one the app created with that name, is used and left open', async () => {
    expect(startHostTrace(false)).toBeNull();
    const given = createTraceChannel({ name: uniqueName('given') });
    const t = startHostTrace(given);
    expect(t?.channel).toBe(given);
    t!.stop();
    await given.ready;
    expect(given.stats().listening).toBe(true);

    process.env.APP_POOL_ID = uniqueName('Mine');
    const mine = createTraceChannel({ name: process.env.APP_POOL_ID });
    const u = startHostTrace(true);
    expect(u?.channel).toBe(mine);
    u!.stop();
    await mine.ready;
    expect(mine.stats().listening).toBe(true);
    await Promise.all([given.close(), mine.close()]);
  });

  test('attachTrace gives the channel to a handler that takes one', async () => {
    const channel = createTraceChannel({ name: 'unused', listen: false });
    const handler = new SimpleHandler((_req, res) => res.end('ok'));
    expect(attachTrace(handler, channel)).toBe(true);
    expect(attachTrace({}, channel)).toBe(false);
    const { MockEcb } = await import('../../src/ecb/mock-ecb.js');
    const ecb = await MockEcb.from({ url: '/attached' });
    await handler.serve(ecb);
    expect(channel.recent()).toEqual([expect.objectContaining({ source: 'request', url: '/attached', status: 200 })]);
    await channel.close();
  });
});
