/**
 * ThreadPoolHandler through the C reference host: the host's pthreads call HttpExtensionProc, the main thread posts
 * each ECB address to a worker, and the worker does the I/O from its own thread. Every test checks the one rule
 * that matters under crashes: each request gets exactly one DONE_WITH_SESSION, and no ECB is touched after it.
 */
import { join } from 'node:path';
import { HSE_STATUS_ERROR, HSE_STATUS_PENDING } from '../../src/ecb/constants.js';
import { RequestModel, type RequestDescription } from '../../src/ecb/request-model.js';
import { createExtension, type IsapiExtension } from '../../src/handlers/create-extension.js';
import { ThreadPoolHandler, type ThreadPoolHandlerOptions } from '../../src/handlers/thread-pool-handler.js';
import { CHost, type CHostResult } from '../native/c-host.js';
import { expectCleanSessions } from '../support/clean-sessions.js';

const APP = join(__dirname, '../fixtures/apps/pool-app.mjs');

let host: CHost;
beforeAll(() => {
  host = new CHost();
});
afterAll(async () => {
  await host.close();
});

interface Pool {
  readonly ext: IsapiExtension;
  readonly handler: ThreadPoolHandler;
  readonly errors: { kind: string; error: string }[];
  run(requests: RequestDescription[], threads?: number): Promise<CHostResult[]>;
  stop(): Promise<void>;
}

async function pool(options: ThreadPoolHandlerOptions = {}, module = APP): Promise<Pool> {
  const errors: { kind: string; error: string }[] = [];
  const handler = new ThreadPoolHandler(module, { workers: 2, onError: (e, c) => errors.push({ kind: c.kind, error: String(e) }), ...options });
  const ext = createExtension(handler);
  await handler.ready();
  return {
    ext,
    handler,
    errors,
    run: (requests, threads = 4) => host.executeMany(requests.map((r) => new RequestModel(r)), ext.nativeEntryPoints().HttpExtensionProc, { threads, timeoutMs: 20_000 }),
    async stop() {
      ext.TerminateExtension(2);
      await ext.terminated;
      ext.dispose();
    },
  };
}

test('requests run on the worker threads, byte-exact, from 8 host threads', async () => {
  const p = await pool();
  try {
    const bodies = Array.from({ length: 200 }, (_, i) => Buffer.alloc(1 + i * 997, i & 0xff));
    const results = await p.run(bodies.map((body, i) => ({ method: 'POST', url: `/echo?i=${i}`, body })), 8);
    expectCleanSessions(results);
    results.forEach((r, i) => expect(r.body.equals(bodies[i] as Buffer)).toBe(true));
    const threads = new Set(results.map((r) => /X-Thread: (\d+)/.exec(r.headerBlock ?? '')?.[1]));
    // Both workers served, and none of it ran on the main thread (threadId 0).
    expect(threads.size).toBe(2);
    expect(threads.has('0')).toBe(false);
    expect(results.every((r) => r.procResult === HSE_STATUS_PENDING)).toBe(true);
  } finally {
    await p.stop();
  }
});

test('a CommonJS app module and a named export both load', async () => {
  const cjs = await pool({ workers: 1 }, join(__dirname, '../fixtures/apps/pool-app.cjs'));
  const named = await pool({ workers: 1, export: 'named' });
  try {
    expect((await cjs.run([{ url: '/c' }]))[0]!.body.toString()).toBe('cjs /c');
    expect((await named.run([{ url: '/n' }]))[0]!.body.toString()).toBe('named export');
  } finally {
    await cjs.stop();
    await named.stop();
  }
});

test('an app that fails to load is reported, and requests get 503 instead of hanging', async () => {
  const errors: string[] = [];
  const handler = new ThreadPoolHandler(join(__dirname, '../fixtures/apps/broken-app.mjs'), { workers: 1, onError: (e) => errors.push(String(e)) });
  const ext = createExtension(handler);
  await expect(handler.ready()).rejects.toMatchObject({ message: expect.stringContaining('could not load the app') });
  const [r] = await host.executeMany([new RequestModel({ url: '/' })], ext.nativeEntryPoints().HttpExtensionProc, { threads: 1 });
  expect(r!.status).toMatch(/^503 /);
  expect(r!.doneCount).toBe(1);
  expect(errors.join('\n')).toMatch(/SyntaxError|Unexpected/);
  ext.TerminateExtension(2);
  await ext.terminated;
  ext.dispose();
});

describe.each([
  ['an uncaught exception', '/throw-async'],
  ['process.exit() in the worker', '/exit'],
])('a worker that dies from %s', (_label, route) => {
  test('has its in-flight requests answered 500 once each, from the main thread, and is respawned', async () => {
    const p = await pool({ workers: 1, crashLimit: { count: 100, windowMs: 60_000 } });
    try {
      const results = await p.run([{ url: '/slow?ms=300' }, { url: route }, { url: '/slow?ms=300' }], 3);
      expectCleanSessions(results);
      for (const r of results) expect(r.status).toBe('500 Internal Server Error');
      expect(p.errors.some((e) => e.kind === 'crash')).toBe(true);
      // The replacement worker serves the next request.
      await p.handler.ready();
      expect((await p.run([{ url: '/after' }]))[0]!.body.toString()).toMatch(/GET \/after$/);
    } finally {
      await p.stop();
    }
  });
});

test('a worker that dies after sending the head has that connection closed instead, with HSE_STATUS_ERROR', async () => {
  const p = await pool({ workers: 1, crashLimit: { count: 100, windowMs: 60_000 } });
  try {
    const [r] = await p.run([{ url: '/headers-then-exit' }]);
    expectCleanSessions([r!]);
    expect(r!.status).toBe('200 OK');
    expect(r!.body.toString()).toBe('7\r\npartial\r\n');
    expect(r!.closedConnection).toBe(true);
    expect(r!.doneStatus).toBe(HSE_STATUS_ERROR);
  } finally {
    await p.stop();
  }
});

test('a worker that runs out of memory dies alone; its request gets a 500', async () => {
  const p = await pool({ workers: 1, resourceLimits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8 }, crashLimit: { count: 100, windowMs: 60_000 } });
  try {
    const [r] = await p.run([{ url: '/oom' }]);
    expectCleanSessions([r!]);
    expect(r!.status).toBe('500 Internal Server Error');
    await p.handler.ready();
    expect((await p.run([{ url: '/alive' }]))[0]!.status).toBe('200 OK');
  } finally {
    await p.stop();
  }
});

test('a stuck worker is terminated past its timeout, and its request still ends once', async () => {
  const p = await pool({ workers: 1, timeout: 200, crashLimit: { count: 100, windowMs: 60_000 } });
  try {
    const started = Date.now();
    const [r] = await p.run([{ url: '/hang' }]);
    expectCleanSessions([r!]);
    expect(r!.status).toBe('500 Internal Server Error');
    // timeout + the stuck grace (5 s), far less than the 60 s the handler would spin.
    expect(Date.now() - started).toBeLessThan(15_000);
  } finally {
    await p.stop();
  }
}, 30_000);

test('a worker killed while its request is uploading: the outstanding read is adopted, then the session ends once', async () => {
  const p = await pool({ workers: 1, crashLimit: { count: 100, windowMs: 60_000 } });
  try {
    const [r] = await p.run([{ method: 'POST', url: '/upload-then-exit', body: Buffer.alloc(2_000_000, 1) }]);
    expectCleanSessions([r!]);
    expect(r!.status).toBe('500 Internal Server Error');
  } finally {
    await p.stop();
  }
});

test('repeated crashes report the worker process unhealthy, once, on a pending ECB', async () => {
  const p = await pool({ workers: 1, crashLimit: { count: 2, windowMs: 60_000 } });
  try {
    const first = await p.run([{ url: '/exit' }]);
    await p.handler.ready();
    const second = await p.run([{ url: '/exit' }]);
    await p.handler.ready();
    const third = await p.run([{ url: '/fine' }]);
    const reasons = [...first, ...second, ...third].flatMap((r) => r.unhealthy);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/2 worker crashes within 60 s/);
    // The operator sees it too, not only IIS (docs/operations.md "Health reports").
    expect(p.errors.filter((e) => /reporting the worker process unhealthy to IIS .*2 worker crashes within 60 s/.test(e.error))).toHaveLength(1);
    expectCleanSessions([...first, ...second, ...third]);
  } finally {
    await p.stop();
  }
});

test('overload: past the queue, requests get 503 with Retry-After at once, and every request ends once', async () => {
  const p = await pool({ workers: 1, maxInFlightPerWorker: 2, maxQueue: 3 });
  try {
    const results = await p.run(Array.from({ length: 12 }, () => ({ url: '/slow?ms=150' })), 12);
    expectCleanSessions(results);
    const ok = results.filter((r) => r.status === '200 OK').length;
    const refused = results.filter((r) => r.status === '503 Service Unavailable');
    expect(ok + refused.length).toBe(12);
    expect(ok).toBeGreaterThanOrEqual(5);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const r of refused) expect(r.headerBlock).toContain('Retry-After: 1\r\n');
  } finally {
    await p.stop();
  }
});

test('shutdown under load: requests in flight finish, new ones get 503, workers stop', async () => {
  const p = await pool({ workers: 2, maxInFlightPerWorker: 4 });
  const running = p.run(Array.from({ length: 8 }, () => ({ url: '/slow?ms=300' })), 8);
  await new Promise((r) => setTimeout(r, 100));
  p.ext.TerminateExtension(2);
  const late = await host.executeMany([new RequestModel({ url: '/late' })], p.ext.nativeEntryPoints().HttpExtensionProc, { threads: 1 });
  expect(late[0]!.status).toBe('503 Service Unavailable');
  const results = await running;
  expectCleanSessions([...results, ...late]);
  expect(results.every((r) => r.body.toString() === 'slow done')).toBe(true);
  await p.ext.terminated;
  expect(p.handler.inFlight).toBe(0);
  p.ext.dispose();
});
