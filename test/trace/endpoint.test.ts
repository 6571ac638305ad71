/**
 * Names and endpoints: a pipe on Windows, a Unix socket elsewhere; a name held by a live channel is refused with a
 * coded error (in this process at once, in another one through `ready`); a stale socket file is taken over.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes } from '../../src/errors.js';
import { createTraceChannel } from '../../src/trace/channel.js';
import { checkTraceName, defaultTraceName, traceEndpoint } from '../../src/trace/endpoint.js';
import { collect, uniqueName } from './helpers.js';

const root = join(__dirname, '../..');
const unixOnly = process.platform === 'win32' ? test.skip : test;

test('endpoints: \\\\.\\pipe\\isapi-http-<name> on Windows, <tmpdir>/isapi-http-<name>.sock elsewhere', () => {
  expect(traceEndpoint('DefaultAppPool', 'win32')).toBe('\\\\.\\pipe\\isapi-http-DefaultAppPool');
  expect(traceEndpoint('shop', 'linux', '/tmp')).toBe('/tmp/isapi-http-shop.sock');
  expect(traceEndpoint('shop')).toBe(process.platform === 'win32' ? '\\\\.\\pipe\\isapi-http-shop' : join(tmpdir(), 'isapi-http-shop.sock'));
  expect(() => traceEndpoint('x'.repeat(60), 'linux', `/${'d'.repeat(60)}`)).toThrow(/longer than a Unix socket path/);
});

test('names: safe characters only; the default is the app pool (APP_POOL_ID), else "default"', () => {
  for (const bad of ['', 'a/b', '..', 'a b', '-x', 'x'.repeat(65), 42]) {
    expect(() => checkTraceName(bad)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  }
  expect(checkTraceName('Pool_1.a-b')).toBe('Pool_1.a-b');
  expect(defaultTraceName({ APP_POOL_ID: 'DefaultAppPool' })).toBe('DefaultAppPool');
  expect(defaultTraceName({ APP_POOL_ID: 'My Pool (v2)' })).toBe('My-Pool-v2-');
  expect(defaultTraceName({})).toBe('default');
  expect(() => createTraceChannel({ name: 'a/b' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
});

test('a second channel with the same name in this process is refused at once, with a coded error', async () => {
  const name = uniqueName('dup');
  const first = createTraceChannel({ name });
  await first.ready;
  expect(() => createTraceChannel({ name })).toThrow(expect.objectContaining({ code: ErrorCodes.TRACE_NAME_IN_USE, message: expect.stringContaining(`"${name}" is in use`) }));
  // A channel that does not listen does not claim the name.
  await createTraceChannel({ name, listen: false }).close();
  await first.close();
  const again = createTraceChannel({ name });
  await again.ready;
  await again.close();
});

describe('another process', () => {
  let child: ChildProcess | null = null;
  afterEach(() => {
    child?.stdin?.end();
    child = null;
  });

  function hold(name: string): Promise<void> {
    child = spawn(process.execPath, ['--import', './tools/ts-register.mjs', 'test/trace/fixtures/hold-channel.ts', name], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
    const c = child;
    return new Promise((resolve, reject) => {
      c.stdout?.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      c.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
    });
  }

  test('holding the name: `ready` rejects with ERR_ISAPI_TRACE_NAME_IN_USE, and the ring still works', async () => {
    const name = uniqueName('held');
    await hold(name);
    const channel = createTraceChannel({ name });
    await expect(channel.ready).rejects.toMatchObject({ code: ErrorCodes.TRACE_NAME_IN_USE, message: expect.stringMatching(/in use .*live trace channel/) });
    channel.info('kept anyway');
    expect(channel.stats().listening).toBe(false);
    expect(channel.recent().map((r) => r.msg)).toEqual([expect.stringContaining('collectors cannot connect'), 'kept anyway']);
    // The holder's channel is untouched: a collector still reaches it.
    const c = collect({ name, json: true, follow: false });
    await c.done;
    expect(c.records().map((r) => r.msg)).toEqual(['held by another process']);
    await channel.close();
  }, 30_000);

  test('whenInUse: "retry" takes the name over once its holder has gone', async () => {
    const name = uniqueName('retry');
    await hold(name);
    const channel = createTraceChannel({ name, whenInUse: 'retry', retryMs: 50 });
    let ready = false;
    void channel.ready.then(() => (ready = true));
    await new Promise((r) => setTimeout(r, 300));
    expect(ready).toBe(false);
    child?.stdin?.end();
    await channel.ready;
    expect(channel.stats().listening).toBe(true);
    await channel.close();
  }, 30_000);
});

unixOnly('a stale socket file (its process died without closing) is removed and the name is taken', async () => {
  const name = uniqueName('stale');
  const path = traceEndpoint(name);
  // A process that listens there and is killed: the socket file stays behind, with nobody accepting.
  const script = `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`;
  spawnSync(process.execPath, ['-e', script]);
  expect(existsSync(path)).toBe(true);
  const channel = createTraceChannel({ name });
  await channel.ready;
  channel.info('fresh');
  const c = collect({ name, json: true, follow: false });
  await c.done;
  expect(c.records().map((r) => r.msg)).toEqual(['fresh']);
  await channel.close();
  expect(existsSync(path)).toBe(false);
});

unixOnly('a path that is not a socket is never deleted: the name is refused', async () => {
  const name = uniqueName('file');
  const path = traceEndpoint(name);
  writeFileSync(path, 'not a socket');
  try {
    const channel = createTraceChannel({ name });
    await expect(channel.ready).rejects.toMatchObject({ code: ErrorCodes.TRACE_NAME_IN_USE, message: expect.stringContaining('not a socket') });
    expect(existsSync(path)).toBe(true);
    await channel.close();
  } finally {
    rmSync(path, { force: true });
  }
});

test('a live listener that is not a channel holds the name as well', async () => {
  const name = uniqueName('raw');
  const server = createServer();
  await new Promise<void>((r) => server.listen(traceEndpoint(name), r));
  try {
    const channel = createTraceChannel({ name });
    await expect(channel.ready).rejects.toMatchObject({ code: ErrorCodes.TRACE_NAME_IN_USE });
    await channel.close();
  } finally {
    server.close();
  }
});
