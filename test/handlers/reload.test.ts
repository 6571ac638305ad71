/**
 * ThreadPoolHandler's reload on change (issue 7 item 2), through the C reference host: its pthreads call
 * HttpExtensionProc while a test edits the app's files. What must hold:
 * - under continuous load from several host threads, a reload fails no request, requests in flight on the previous
 *   workers finish there, and afterwards every response comes from the new code;
 * - new code that does not load (a syntax error) or does not start leaves the previous workers serving, and the
 *   failure reaches the trace channel; the next good edit reloads;
 * - the watcher is closed by TerminateExtension.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RequestModel, type RequestDescription } from '../../src/ecb/request-model.js';
import { createExtension, type IsapiExtension } from '../../src/handlers/create-extension.js';
import { SimpleHandler } from '../../src/handlers/simple-handler.js';
import { ThreadPoolHandler, type ReloadEvent, type ThreadPoolHandlerOptions } from '../../src/handlers/thread-pool-handler.js';
import { ErrorCodes } from '../../src/errors.js';
import { createTraceChannel } from '../../src/trace/channel.js';
import { CHost, type CHostManyOptions, type CHostResult } from '../native/c-host.js';
import { expectCleanSessions } from '../support/clean-sessions.js';
import { collect, uniqueName, waitFor } from '../trace/helpers.js';

let host: CHost;
let dir: string;
beforeAll(() => {
  host = new CHost();
});
afterAll(async () => {
  await host.close();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'isapi-reload-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** An ESM app whose answer comes from ./lib/message.mjs, so that an edit below the entry module is what changes. */
function esmApp(message: string): string {
  mkdirSync(join(dir, 'lib'), { recursive: true });
  writeFileSync(
    join(dir, 'app.mjs'),
    `import { threadId } from 'node:worker_threads';
import { message } from './lib/message.mjs';
export default (req, res) => {
  const ms = Number(new URL(req.url, 'http://x').searchParams.get('ms') ?? 0);
  setTimeout(() => { res.setHeader('X-Thread', String(threadId)); res.end(message); }, ms);
};
`,
  );
  setMessage(message);
  return join(dir, 'app.mjs');
}

function setMessage(message: string, file = 'lib/message.mjs'): void {
  writeFileSync(join(dir, file), `export const message = ${JSON.stringify(message)};\n`);
}

interface Pool {
  readonly ext: IsapiExtension;
  readonly handler: ThreadPoolHandler;
  readonly reloads: ReloadEvent[];
  readonly errors: { kind: string; error: string }[];
  run(requests: RequestDescription[], opts?: CHostManyOptions): Promise<CHostResult[]>;
  /** Resolves with the `n`th reload event (1-based). */
  reload(n: number, timeoutMs?: number): Promise<ReloadEvent>;
  stop(): Promise<void>;
}

async function pool(module: string, options: ThreadPoolHandlerOptions = {}): Promise<Pool> {
  const reloads: ReloadEvent[] = [];
  const errors: { kind: string; error: string }[] = [];
  const handler = new ThreadPoolHandler(module, {
    workers: 2,
    watch: true,
    watchDebounce: 50,
    onReload: (e) => reloads.push(e),
    ...(options.trace ? {} : { onError: (e: unknown, c: { kind: string }) => errors.push({ kind: c.kind, error: String((e as Error)?.stack ?? e) }) }),
    ...options,
  });
  const ext = createExtension(handler);
  await handler.ready();
  return {
    ext,
    handler,
    reloads,
    errors,
    run: (requests, opts = {}) => host.executeMany(requests.map((r) => new RequestModel(r)), ext.nativeEntryPoints().HttpExtensionProc, { threads: 4, timeoutMs: 20_000, ...opts }),
    async reload(n, timeoutMs = 30_000) {
      await waitFor(() => reloads.length >= n, timeoutMs, `reload event ${n}`);
      return reloads[n - 1] as ReloadEvent;
    },
    async stop() {
      ext.TerminateExtension(2);
      await ext.terminated;
      ext.dispose();
    },
  };
}

const threadOf = (r: CHostResult): string | undefined => /X-Thread: (\d+)/.exec(r.headerBlock ?? '')?.[1];

/** Batches of closed-loop requests from 4 host threads (4 concurrent clients), back to back until `until()`. */
async function load(p: Pool, until: () => boolean, into: CHostResult[]): Promise<void> {
  while (!until()) {
    into.push(...(await p.run(Array.from({ length: 40 }, (_, i) => ({ url: `/?i=${i}` })), { threads: 4, closedLoop: true, intervalUs: 2000 })));
  }
}

test('an edit under load: no request fails, requests in flight finish on the old workers, then the new code answers', async () => {
  const p = await pool(esmApp('v1'));
  try {
    const before = await p.run([{ url: '/' }, { url: '/' }]);
    const oldThreads = new Set(before.map(threadOf));
    const steady: CHostResult[] = [];
    let stopLoad = false;
    const loading = load(p, () => stopLoad, steady);
    // Slow requests that are still running on the old workers when the new ones take over.
    const slow = p.run(Array.from({ length: 4 }, () => ({ url: '/?ms=6000' })), { threads: 4 });
    await new Promise((r) => setTimeout(r, 300));
    setMessage('v2');
    const event = await p.reload(1);
    // Keep the load going past the switch, then stop it.
    const atSwitch = steady.length;
    await waitFor(() => steady.length >= atSwitch + 80, 30_000, 'requests after the switch');
    stopLoad = true;
    await loading;
    const slowResults = await slow;
    const after = await p.run(Array.from({ length: 20 }, () => ({ url: '/' })));

    expect(event).toMatchObject({ ok: true, generation: 2, changed: [join(dir, 'lib/message.mjs')] });
    expect(event.draining).toBeGreaterThanOrEqual(4); // the slow ones, at least
    const all = [...before, ...steady, ...slowResults, ...after];
    expectCleanSessions(all);
    expect(all.every((r) => r.status === '200 OK')).toBe(true);
    expect(steady.length).toBeGreaterThanOrEqual(120);
    expect(new Set(steady.map((r) => r.body.toString()))).toEqual(new Set(['v1', 'v2']));
    // The slow requests started on the old workers and finished there, with the old code, after the switch.
    expect(slowResults.map((r) => r.body.toString())).toEqual(['v1', 'v1', 'v1', 'v1']);
    expect(slowResults.every((r) => oldThreads.has(threadOf(r)))).toBe(true);
    // Afterwards: only the new code, on new threads.
    expect(after.map((r) => r.body.toString())).toEqual(Array.from({ length: 20 }, () => 'v2'));
    expect(after.some((r) => oldThreads.has(threadOf(r)))).toBe(false);
    expect(p.handler.generation).toBe(2);
    expect(p.errors).toEqual([]);
  } finally {
    await p.stop();
  }
  expect(p.handler.inFlight).toBe(0);
}, 60_000);

test('a syntax error keeps the old code serving and reaches the trace; fixing it reloads (CommonJS app)', async () => {
  mkdirSync(join(dir, 'lib'));
  writeFileSync(join(dir, 'app.cjs'), `const { message } = require('./lib/message.cjs');\nmodule.exports = (req, res) => res.end(message);\n`);
  const setCjs = (source: string): void => writeFileSync(join(dir, 'lib/message.cjs'), source);
  setCjs(`exports.message = 'good 1';\n`);
  const channel = createTraceChannel({ name: uniqueName('reload') });
  await channel.ready;
  const collector = collect({ name: channel.name, json: true });
  const p = await pool(join(dir, 'app.cjs'), { trace: channel });
  try {
    expect((await p.run([{ url: '/' }]))[0]!.body.toString()).toBe('good 1');

    setCjs(`exports.message = 'broken' +;\n`);
    const steady: CHostResult[] = [];
    let stopLoad = false;
    const loading = load(p, () => stopLoad, steady);
    const failed = await p.reload(1);
    stopLoad = true;
    await loading;
    expect(failed).toMatchObject({ ok: false, generation: 1 });
    expect(String(failed.error)).toMatch(/reload failed after changes to .*message\.cjs; generation 1 keeps serving/);
    expectCleanSessions(steady);
    expect(steady.length).toBeGreaterThan(0);
    expect(steady.every((r) => r.status === '200 OK' && r.body.toString() === 'good 1')).toBe(true);
    expect(p.handler.generation).toBe(1);

    // The failure is in the trace, as an error record of kind 'reload' with the worker's SyntaxError in its stack.
    await waitFor(() => collector.records().some((r) => r.kind === 'reload'), 5000, 'the reload record');
    const record = collector.records().find((r) => r.kind === 'reload')!;
    expect(record).toMatchObject({ level: 'error', handler: 'threadpool', source: 'library' });
    expect(record.msg).toMatch(/reload failed after changes to .*message\.cjs/);
    expect(record.err?.stack).toMatch(/SyntaxError/);
    expect(record.err?.stack).toMatch(/message\.cjs:1/); // CommonJS names the file and line

    setCjs(`exports.message = 'good 2';\n`);
    expect(await p.reload(2)).toMatchObject({ ok: true, generation: 2 });
    const after = await p.run(Array.from({ length: 8 }, () => ({ url: '/' })));
    expectCleanSessions(after);
    expect(after.every((r) => r.body.toString() === 'good 2')).toBe(true);
    await waitFor(() => collector.records().some((r) => r.kind === 'reload' && r.level === 'info'), 5000, 'the reloaded record');
    expect(collector.records().find((r) => r.kind === 'reload' && r.level === 'info')!.msg).toMatch(/thread pool reloaded after changes to .*message\.cjs: generation 2 serving/);
  } finally {
    await p.stop();
    await collector.stop();
    await channel.close();
  }
}, 60_000);

test('new code whose start-up fails (Fastify-style ready() rejects) is not switched to', async () => {
  writeFileSync(join(dir, 'config.json'), '{ "ok": true }');
  writeFileSync(
    join(dir, 'app.mjs'),
    `import { readFileSync } from 'node:fs';
const config = JSON.parse(readFileSync(new URL('./config.json', import.meta.url), 'utf8'));
export default {
  async ready() { if (!config.ok) throw new Error('the database is down'); },
  routing(req, res) { res.end('started ' + config.ok); },
};
`,
  );
  const p = await pool(join(dir, 'app.mjs'));
  try {
    expect((await p.run([{ url: '/' }]))[0]!.body.toString()).toBe('started true');
    writeFileSync(join(dir, 'config.json'), '{ "ok": false }');
    const failed = await p.reload(1);
    expect(failed.ok).toBe(false);
    expect(String(failed.error)).toMatch(/the database is down/);
    expect(p.errors).toEqual([expect.objectContaining({ kind: 'reload', error: expect.stringContaining('the database is down') })]);
    const still = await p.run([{ url: '/' }, { url: '/' }]);
    expect(still.map((r) => `${r.status} ${r.body.toString()}`)).toEqual(['200 OK started true', '200 OK started true']);
  } finally {
    await p.stop();
  }
}, 60_000);

test('a burst of changes makes one reload; a change while the new workers load makes the newest code win', async () => {
  const p = await pool(esmApp('one'));
  try {
    // Five files within the debounce: one reload that names them all.
    for (let i = 0; i < 5; i++) writeFileSync(join(dir, `extra-${i}.mjs`), `export default ${i};\n`);
    setMessage('two');
    const first = await p.reload(1);
    expect(first.ok).toBe(true);
    expect([...first.changed].sort()).toEqual([...Array.from({ length: 5 }, (_, i) => join(dir, `extra-${i}.mjs`)), join(dir, 'lib/message.mjs')].sort());
    await new Promise((r) => setTimeout(r, 300));
    expect(p.reloads).toHaveLength(1);

    // An edit, then another one once the first reload's workers are loading: they may have read 'three', so they
    // are discarded and the reload starts over; 'four' is what serves, and the generation goes up by one.
    setMessage('three');
    await waitFor(() => p.handler.reloading, 5000, 'the reload to start');
    setMessage('four');
    const second = await p.reload(2);
    expect(second).toMatchObject({ ok: true, generation: 3 });
    expect(second.changed).toEqual([join(dir, 'lib/message.mjs')]);
    expect((await p.run([{ url: '/' }, { url: '/' }])).map((r) => r.body.toString())).toEqual(['four', 'four']);
  } finally {
    await p.stop();
  }
}, 60_000);

test('reload() reloads without a watcher; a call while one loads settles with it', async () => {
  const p = await pool(esmApp('a'), { watch: false });
  try {
    setMessage('b');
    const [x, y] = await Promise.all([p.handler.reload(), p.handler.reload()]);
    expect([x, y]).toEqual([true, true]);
    expect(p.handler.generation).toBe(2);
    expect(p.reloads.map((e) => e.ok)).toEqual([true]);
    expect((await p.run([{ url: '/' }]))[0]!.body.toString()).toBe('b');
  } finally {
    await p.stop();
  }
  // After TerminateExtension nothing reloads.
  expect(await p.handler.reload()).toBe(false);
}, 60_000);

test('TerminateExtension closes the watcher: no fs watch handle is left, and later edits do nothing', async () => {
  const watches = (): number => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;
  const baseline = watches();
  const p = await pool(esmApp('x'));
  expect(watches()).toBeGreaterThan(baseline);
  await p.stop();
  await new Promise((r) => setTimeout(r, 20)); // libuv drops a closed handle from the active list a turn later
  expect(watches()).toBe(baseline);
  setMessage('y');
  await new Promise((r) => setTimeout(r, 300));
  expect(p.reloads).toEqual([]);
  expect(p.errors).toEqual([]);
}, 60_000);

describe('options', () => {
  test('SimpleHandler refuses watch with ERR_ISAPI_RELOAD_NOT_SUPPORTED, pointing at ThreadPoolHandler', () => {
    expect(() => new SimpleHandler((_req, res) => res.end(), { watch: true } as never)).toThrow(
      expect.objectContaining({ code: ErrorCodes.RELOAD_NOT_SUPPORTED, message: expect.stringContaining('ThreadPoolHandler') }),
    );
    expect(() => new SimpleHandler((_req, res) => res.end(), { watch: false } as never)).not.toThrow();
  });

  test.each([
    [{ watch: 'yes' }, /watch must be true, false or a list/],
    [{ watch: [''] }, /watch must be true, false or a list/],
    [{ watchDebounce: -1 }, /watchDebounce must be a non-negative integer/],
  ])('%j is refused', (options, message) => {
    expect(() => new ThreadPoolHandler(join(dir, 'app.mjs'), options as never)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringMatching(message) }));
  });

  test('watch needs an app module on disk', () => {
    expect(() => new ThreadPoolHandler('data:text/javascript,export default 1', { watch: true })).toThrow(/needs an app module on disk/);
  });
});
