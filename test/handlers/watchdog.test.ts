/**
 * The health watchdog through the C host: a handler that blocks the JS thread past the threshold gets
 * HSE_REQ_REPORT_UNHEALTHY called on a pending ECB, by the watchdog thread, while the served thread is still stuck.
 */
import { RequestModel } from '../../src/ecb/request-model.js';
import { createExtension } from '../../src/handlers/create-extension.js';
import { SimpleHandler } from '../../src/handlers/simple-handler.js';
import { ThreadPoolHandler } from '../../src/handlers/thread-pool-handler.js';
import { join } from 'node:path';
import { CHost } from '../native/c-host.js';

let host: CHost;
beforeAll(() => (host = new CHost()));
afterAll(() => host.close());

test('a JS thread stalled past stallMs is reported unhealthy, once, with a readable reason', async () => {
  const reports: string[] = [];
  const ext = createExtension(
    new SimpleHandler((req, res) => {
      if (req.url === '/block') {
        const until = Date.now() + 1500;
        while (Date.now() < until) {
          // the stalled thread: no event loop turn for 1.5 s
        }
      }
      res.end('ok');
    }),
    { watchdog: { stallMs: 300 }, onError: (e) => reports.push(String((e as Error).message)) },
  );
  try {
    await new Promise((r) => setTimeout(r, 200)); // let the watchdog thread start
    const [r] = await host.executeMany([new RequestModel({ url: '/block' })], ext.nativeEntryPoints().HttpExtensionProc, { threads: 1 });
    expect(r!.body.toString()).toBe('ok');
    expect(r!.doneCount).toBe(1);
    expect(r!.unhealthy).toHaveLength(1);
    expect(r!.unhealthy[0]).toMatch(/^isapi-http: the JS thread serving requests has not responded for \d+\.\d s \(threshold 0\.3 s\)$/);
    expect(Object.values(r!.violations).every((n) => n === 0)).toBe(true);
    // The reason also reaches the extension's log (and the trace channel, when one is attached).
    await new Promise((r2) => setTimeout(r2, 50));
    expect(reports.some((m) => /has not responded/.test(m))).toBe(true);
  } finally {
    ext.dispose();
  }
});

test('a heap above the limit for the window is reported on a pending ECB', async () => {
  const ext = createExtension(new SimpleHandler((_req, res) => void setTimeout(() => res.end('slow'), 900)), {
    watchdog: { stallMs: 60_000, heapLimitMb: 1, heapWindowMs: 200, intervalMs: 50 },
    onError: () => undefined,
  });
  try {
    const [r] = await host.executeMany([new RequestModel({ url: '/slow' })], ext.nativeEntryPoints().HttpExtensionProc, { threads: 1 });
    expect(r!.body.toString()).toBe('slow');
    expect(r!.unhealthy.join('\n')).toMatch(/heap in use \d+ MiB has stayed above 1 MiB/);
  } finally {
    ext.dispose();
  }
});

test('a healthy thread is never reported, and the watchdog does not follow ThreadPoolHandler ECBs', async () => {
  const ext = createExtension(new SimpleHandler((_req, res) => res.end('fine')), { watchdog: { stallMs: 300, intervalMs: 50 } });
  const pool = new ThreadPoolHandler(join(__dirname, '../fixtures/apps/pool-app.mjs'), { workers: 1 });
  const poolExt = createExtension(pool, { watchdog: { stallMs: 300 } });
  try {
    const results = await host.executeMany(Array.from({ length: 50 }, () => new RequestModel({ url: '/' })), ext.nativeEntryPoints().HttpExtensionProc, { threads: 4 });
    expect(results.flatMap((r) => r.unhealthy)).toEqual([]);
    await pool.ready();
    const pooled = await host.executeMany([new RequestModel({ url: '/x' })], poolExt.nativeEntryPoints().HttpExtensionProc, { threads: 1 });
    expect(pooled[0]!.doneCount).toBe(1);
  } finally {
    ext.dispose();
    poolExt.TerminateExtension(2);
    await poolExt.terminated;
    poolExt.dispose();
  }
});
