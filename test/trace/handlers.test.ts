/**
 * The handlers' diagnostics in the channel: per-request records (method, url, status, ms, handler, thread),
 * errors with stacks, and console output tagged with the request, from the main thread (SimpleHandler) and from
 * ThreadPoolHandler's workers (through the C reference host, whose own threads call HttpExtensionProc).
 */
import { join } from 'node:path';
import { RequestModel, type RequestDescription } from '../../src/ecb/request-model.js';
import { createExtension } from '../../src/handlers/create-extension.js';
import { ThreadPoolHandler } from '../../src/handlers/thread-pool-handler.js';
import { createTraceChannel, type TraceChannel } from '../../src/trace/channel.js';
import type { TraceRecord } from '../../src/trace/record.js';
import { inject } from '../../src/testing/inject.js';
import { CHost } from '../native/c-host.js';
import { collect, uniqueName, waitFor, type Collected } from './helpers.js';

const APP = join(__dirname, 'fixtures/trace-app.mjs');

let channel: TraceChannel;
beforeEach(async () => {
  channel = createTraceChannel({ name: uniqueName('hd') });
  await channel.ready;
});
afterEach(() => channel.close());

describe('SimpleHandler', () => {
  test('each request gets a summary record, and its console lines carry its id', async () => {
    channel.capture();
    try {
      const res = await inject(
        (req, res) => {
          console.log(`handling ${req.url}`);
          setTimeout(() => res.end('ok'), 2);
        },
        '/hello?x=1',
        { trace: channel },
      );
      expect(res.text()).toBe('ok');
      expect(res.logData).toMatch(/^isapi-http \d+\.\dms$/); // the default lpszLogData note is unchanged
    } finally {
      channel.release();
    }
    const [line, summary] = channel.recent();
    expect(line).toMatchObject({ level: 'info', source: 'console', msg: 'handling /hello?x=1', worker: 0 });
    expect(summary).toMatchObject({ level: 'info', source: 'request', method: 'GET', url: '/hello?x=1', status: 200, handler: 'simple', worker: 0 });
    expect(summary?.requestId).toBe(line?.requestId);
    expect(summary?.requestId).toEqual(expect.any(String));
    expect(summary?.ms).toEqual(expect.any(Number));
    expect(summary?.msg).toMatch(/^GET \/hello\?x=1 200 [\d.]+ms$/);
  });

  test('an app error becomes an error record with its stack; the request record says 500; onError and logNote still run', async () => {
    const mine: unknown[] = [];
    const res = await inject(
      () => {
        throw new Error('kaput');
      },
      { method: 'POST', url: '/boom' },
      { trace: channel, onError: (e) => mine.push(e), logNote: () => 'my note' },
    );
    expect(res.statusCode).toBe(500);
    expect(res.logData).toBe('my note');
    expect(mine).toHaveLength(1);
    const [error, summary] = channel.recent();
    expect(error).toMatchObject({ level: 'error', kind: 'app', method: 'POST', url: '/boom', msg: 'POST /boom failed: kaput', handler: 'simple' });
    expect(error?.err?.stack).toMatch(/Error: kaput\n\s+at /);
    expect(summary).toMatchObject({ level: 'warn', source: 'request', status: 500, requestId: error?.requestId });
  });

  test('without a trace, nothing is recorded (and the handler is as before)', async () => {
    const res = await inject((_req, res) => res.end('plain'), '/');
    expect(res.text()).toBe('plain');
    expect(channel.recent()).toEqual([]);
  });
});

describe('ThreadPoolHandler through the C host', () => {
  let host: CHost;
  beforeAll(() => {
    host = new CHost();
  });
  afterAll(() => host.close());

  async function pool(): Promise<{ handler: ThreadPoolHandler; run(requests: RequestDescription[]): Promise<unknown>; stop(): Promise<void> }> {
    const handler = new ThreadPoolHandler(APP, { workers: 2, trace: channel, crashLimit: { count: 100, windowMs: 60_000 } });
    const ext = createExtension(handler);
    await handler.ready();
    return {
      handler,
      run: (requests) => host.executeMany(requests.map((r) => new RequestModel(r)), ext.nativeEntryPoints().HttpExtensionProc, { threads: 4, timeoutMs: 20_000 }),
      async stop() {
        ext.TerminateExtension(2);
        await ext.terminated;
        ext.dispose();
      },
    };
  }

  function live(): Promise<Collected> {
    const c = collect({ name: channel.name, json: true });
    return waitFor(() => channel.stats().collectors === 1).then(() => c);
  }

  test("output from the workers and from the main thread arrives at a collector, each record with its request's id", async () => {
    const c = await live();
    channel.capture(); // the workers follow: they capture their own console from now on
    const p = await pool();
    try {
      console.log('from the main thread');
      await p.run(Array.from({ length: 6 }, (_, i) => ({ url: `/log?i=${i}` })));
      await waitFor(() => c.records().filter((r) => r.source === 'request').length === 6, 10_000, 'six request records');
    } finally {
      channel.release();
      await p.stop();
    }
    const records = c.records();
    expect(records).toContainEqual(expect.objectContaining({ source: 'console', msg: 'from the main thread', worker: 0 }));
    // The app's start-up line, from each worker (printed while the module loaded, before any request).
    const loaded = records.filter((r) => r.msg.startsWith('trace-app loaded'));
    expect(loaded).toHaveLength(2);
    const threads = new Set(loaded.map((r) => r.worker));
    expect(threads.has(0)).toBe(false);
    for (let i = 0; i < 6; i++) {
      const url = `/log?i=${i}`;
      const summary = records.find((r) => r.source === 'request' && r.url === url) as TraceRecord;
      expect(summary).toMatchObject({ method: 'GET', status: 200, handler: 'threadpool' });
      expect(threads.has(summary.worker)).toBe(true);
      const mine = records.filter((r) => r.requestId === summary.requestId && r.source !== 'request');
      expect(mine.map((r) => [r.source, r.level, r.msg])).toEqual([
        ['console', 'info', `console from thread ${summary.worker} for ${url}`],
        ['stderr', 'warn', `stderr later from thread ${summary.worker} for ${url}`],
      ]);
      for (const r of mine) expect(r).toMatchObject({ handler: 'threadpool', worker: summary.worker });
    }
    await c.stop();
  }, 60_000);

  test('an app error in a worker is one error record, with the request id and the stack', async () => {
    const p = await pool();
    try {
      await p.run([{ url: '/fail' }]);
    } finally {
      await p.stop();
    }
    const errors = channel.recent().filter((r) => r.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ kind: 'app', url: '/fail', handler: 'threadpool', requestId: expect.any(String) });
    expect(errors[0]?.err?.stack).toMatch(/Error: failed in thread \d+\n\s+at app \(.*trace-app\.mjs/);
  }, 60_000);

  test.each([
    ['an uncaught exception', '/log-then-throw-async', /Error: uncaught after logging\n\s+at .*trace-app\.mjs/],
    ['process.exit()', '/exit', /process\.exit\(3\) in worker thread \d+\n(.|\n)*at .*pool-app\.mjs:\d+/],
  ])('a worker that dies from %s: its last output and its stack arrive before the worker is gone', async (_label, url, stack) => {
    const c = await live();
    channel.capture();
    const p = await pool();
    try {
      await p.run([{ url }]);
      await waitFor(() => c.records().some((r) => r.source === 'library' && r.kind === 'crash'), 10_000, 'the crash report');
    } finally {
      channel.release();
      await p.stop();
    }
    const records = c.records();
    // The worker's own record of its death: the request it was serving, and where it happened.
    const death = records.findIndex((r) => r.level === 'fatal' && r.handler === 'threadpool');
    expect(death).toBeGreaterThanOrEqual(0);
    const fatal = records[death] as TraceRecord;
    expect(fatal.err?.stack).toMatch(stack);
    expect(fatal.worker).toBeGreaterThan(0);
    expect(fatal.requestId).toEqual(expect.any(String));
    // The main thread learns of the death ('error' / 'exit' events) only after everything the worker posted.
    const report = records.findIndex((r) => r.source === 'library' && r.kind === 'crash' && r.handler === 'threadpool' && r.level === 'error');
    expect(report).toBeGreaterThan(death);
    if (url === '/log-then-throw-async') {
      const last = records.findIndex((r) => r.msg === 'about to crash');
      expect(last).toBeGreaterThanOrEqual(0);
      expect(last).toBeLessThan(death);
      expect(records[last]).toMatchObject({ level: 'error', requestId: fatal.requestId, worker: fatal.worker });
    }
    await c.stop();
  }, 60_000);
});
