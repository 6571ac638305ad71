/**
 * createServer and `isapi-http serve` with ThreadPoolHandler (issue 6 items 1–2, issue 7 item 2), through a real HTTP
 * client on a real port: the module goes to the worker threads, which do the ECB I/O of their requests themselves
 * against EmulatedHost's callbacks; with `watch` / `--watch`, an edit reloads the app without failing a request.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReloadEvent } from '../../src/handlers/thread-pool-handler.js';
import { createServer } from '../../src/host/dev-server.js';
import { ErrorCodes } from '../../src/errors.js';
import { runCli } from './cli-support.js';
import { start, waitFor, type Started } from './support.js';

const POOL_APP = join(__dirname, '../fixtures/apps/pool-app.mjs');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'isapi-pool-serve-'));
  mkdirSync(join(dir, 'lib'));
  writeFileSync(join(dir, 'app.mjs'), `import { message } from './lib/message.mjs';\nexport default (req, res) => res.end(message);\n`);
  setMessage('v1');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function setMessage(message: string): void {
  writeFileSync(join(dir, 'lib/message.mjs'), `export const message = ${JSON.stringify(message)};\n`);
}

async function stop(s: Started): Promise<void> {
  await s.close();
  await s.server.unloaded; // the workers have exited and the watcher is closed
}

/** `clients` concurrent loops of GET requests (fetch keeps connections alive) until `until()`; every answer is kept. */
async function clientsUntil(url: string, clients: number, until: () => boolean): Promise<{ status: number; body: string }[]> {
  const out: { status: number; body: string }[] = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (!until()) {
        const res = await fetch(url);
        out.push({ status: res.status, body: await res.text() });
      }
    }),
  );
  return out;
}

describe('createServer({ handler: "threadpool", module })', () => {
  test('a real HTTP client is served by the worker threads, byte-exact, and close() unloads them', async () => {
    const access: number[] = [];
    const s = await start(null, { handler: 'threadpool', module: POOL_APP, workers: 2 });
    s.server.on('access', (e) => access.push(e.statusCode));
    try {
      await s.server.ready();
      const bodies = Array.from({ length: 40 }, (_, i) => Buffer.alloc(1 + i * 3001, i));
      const results = await Promise.all(
        bodies.map(async (body, i) => {
          const res = await fetch(s.url(`/echo?i=${i}`), { method: 'POST', body });
          return { status: res.status, thread: res.headers.get('x-thread'), body: Buffer.from(await res.arrayBuffer()) };
        }),
      );
      expect(results.every((r) => r.status === 200)).toBe(true);
      results.forEach((r, i) => expect(r.body.equals(bodies[i] as Buffer)).toBe(true));
      // Both workers served, none of it on the main thread (threadId 0).
      const threads = new Set(results.map((r) => r.thread));
      expect(threads.size).toBe(2);
      expect(threads.has('0')).toBe(false);
      await waitFor(() => access.length === 40, 5000, 'the access entries');
    } finally {
      await stop(s);
    }
  });

  test('watch: an edit under load from 6 HTTP clients fails no request; then a syntax error keeps the code, a fix reloads', async () => {
    const reloads: ReloadEvent[] = [];
    const errors: unknown[] = [];
    const s = await start(null, { handler: 'threadpool', module: join(dir, 'app.mjs'), workers: 2, watch: true, watchDebounce: 50, onReload: (e) => reloads.push(e), onError: (e) => errors.push(e) });
    try {
      await s.server.ready();
      expect(await (await fetch(s.url('/'))).text()).toBe('v1');
      let stopped = false;
      const load = clientsUntil(s.url('/'), 6, () => stopped);
      await new Promise((r) => setTimeout(r, 200));
      setMessage('v2');
      await waitFor(() => reloads.length === 1, 30_000, 'the reload');
      await new Promise((r) => setTimeout(r, 300));
      stopped = true;
      const answers = await load;
      expect(reloads[0]).toMatchObject({ ok: true, generation: 2 });
      expect(answers.length).toBeGreaterThan(50);
      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
      expect(new Set(answers.map((a) => a.body))).toEqual(new Set(['v1', 'v2']));
      expect(await (await fetch(s.url('/'))).text()).toBe('v2');

      writeFileSync(join(dir, 'lib/message.mjs'), `export const message = 'v3' +;\n`);
      await waitFor(() => reloads.length === 2, 30_000, 'the failed reload');
      expect(reloads[1]).toMatchObject({ ok: false, generation: 2 });
      expect(String(errors[0])).toMatch(/reload failed after changes to .*message\.mjs; generation 2 keeps serving/);
      expect(await (await fetch(s.url('/'))).text()).toBe('v2');

      setMessage('v4');
      await waitFor(() => reloads.length === 3, 30_000, 'the reload after the fix');
      expect(reloads[2]).toMatchObject({ ok: true, generation: 3 });
      expect(await (await fetch(s.url('/'))).text()).toBe('v4');
    } finally {
      await stop(s);
    }
  }, 90_000);

  test.each([
    [{ handler: 'threadpool' }, ErrorCodes.INVALID_ARGUMENT, /give module/],
    [{ handler: 'threadpool', module: POOL_APP, logNote: () => '' }, ErrorCodes.INVALID_ARGUMENT, /logNote .* handler "simple" only/],
    [{ handler: 'threadpool', module: POOL_APP, export: '1x' }, ErrorCodes.INVALID_ARGUMENT, /export must be an export name/],
    [{ module: POOL_APP }, ErrorCodes.INVALID_ARGUMENT, /module applies to handler "threadpool" only/],
    [{ watch: true }, ErrorCodes.RELOAD_NOT_SUPPORTED, /watch needs handler "threadpool"/],
    [{ handler: 'threadpool', module: POOL_APP, watch: 'yes' }, ErrorCodes.INVALID_ARGUMENT, /watch must be true, false or a list/],
  ])('%j → %s', (options, code, message) => {
    expect(() => createServer(null, options as never)).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
  });

  test('a listener and handler "threadpool" together are refused', () => {
    expect(() => createServer((_req, res) => res.end(), { handler: 'threadpool', module: POOL_APP })).toThrow(
      expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringMatching(/give no listener/) }),
    );
  });
});

describe('isapi-http serve', () => {
  test('--handler threadpool --workers 2: the workers serve a real client; SIGINT waits for them and exits 0', async () => {
    const cli = runCli(['serve', 'test/fixtures/apps/pool-app.mjs', '--handler', 'threadpool', '--workers', '2', '--port', '0', '--host', '127.0.0.1']);
    try {
      await cli.line(/handler threadpool, 2 workers/);
      const [, url] = await cli.line(/listening on (http:\/\/\S+)/);
      const results = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const res = await fetch(`${url}echo?i=${i}`, { method: 'POST', body: `body ${i}` });
          return { status: res.status, thread: res.headers.get('x-thread'), body: await res.text() };
        }),
      );
      expect(results.map((r) => `${r.status} ${r.body}`)).toEqual(Array.from({ length: 20 }, (_, i) => `200 body ${i}`));
      expect(new Set(results.map((r) => r.thread)).has('0')).toBe(false);
      await cli.line(/^POST \/echo\?i=19 200 /);
      cli.child.kill('SIGINT');
      expect(await cli.exited).toBe(0);
      expect(cli.out).toContain('isapi-http: stopped');
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  test('--watch: an edit reloads, a syntax error keeps the code and is printed, a fix reloads', async () => {
    const cli = runCli(['serve', join(dir, 'app.mjs'), '--watch', '--workers', '1', '--port', '0', '--host', '127.0.0.1']);
    try {
      await cli.line(/handler threadpool, 1 worker\)/);
      await cli.line(/watching .* \(without node_modules and dot names\)/);
      const [, url] = await cli.line(/listening on (http:\/\/\S+)/);
      expect(await (await fetch(url!)).text()).toBe('v1');

      setMessage('v2');
      await cli.line(/^isapi-http: reloaded after changes to lib\/message\.mjs: generation 2 serving \(\d+ ms\)/, 30_000);
      expect(await (await fetch(url!)).text()).toBe('v2');

      writeFileSync(join(dir, 'lib/message.mjs'), `export const message = 'v3' +;\n`);
      await waitFor(() => /reload failed after changes to .*message\.mjs; generation 2 keeps serving/.test(cli.err.join('')), 30_000, 'the failure on stderr');
      expect(cli.err.join('')).toMatch(/SyntaxError: Unexpected token/);
      expect(await (await fetch(url!)).text()).toBe('v2');

      setMessage('v4');
      await cli.line(/^isapi-http: reloaded after changes to lib\/message\.mjs: generation 3 serving/, 30_000);
      expect(await (await fetch(url!)).text()).toBe('v4');
      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
    } finally {
      cli.child.kill('SIGKILL');
    }
  }, 90_000);

  test('a module the workers cannot load exits 1 with the reason', async () => {
    writeFileSync(join(dir, 'lib/message.mjs'), `export const message = ;\n`);
    const cli = runCli(['serve', join(dir, 'app.mjs'), '--handler', 'threadpool', '--workers', '1', '--port', '0']);
    expect(await cli.exited).toBe(1);
    expect(cli.err.join('')).toMatch(/could not load the app.*Unexpected token/);
  });
});
