/**
 * The loader contract (docs/native-host.md), proved against the C reference host: its gate plays the Node loader
 * DLL. Through createExtension(SimpleHandler) and createExtension(ThreadPoolHandler), driven only through the three
 * native entry points, as IIS would:
 * - GetExtensionVersion from a host thread starts accepting; before it, requests get the loader's own 503;
 * - TerminateExtension under load: the host stops accepting, drains calls into JS and open sessions (their
 *   completions still delivered), calls the JS TerminateExtension once, then never calls JS again;
 * - the cap: never more than maxJsCalls calls into JS at once, however many host threads;
 * - a client dropped mid-response (kill switch) ends each session once, with HSE_STATUS_ERROR.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Ecb } from '../../src/ecb/ecb.js';
import { HSE_STATUS_ERROR, HSE_STATUS_PENDING, HSE_TERM_MUST_UNLOAD, HSE_VERSION } from '../../src/ecb/constants.js';
import { RequestModel } from '../../src/ecb/request-model.js';
import { createExtension, DEFAULT_DESCRIPTION, type IsapiExtension } from '../../src/handlers/create-extension.js';
import type { IsapiHandler } from '../../src/handlers/handler.js';
import { SimpleHandler } from '../../src/handlers/simple-handler.js';
import { ThreadPoolHandler } from '../../src/handlers/thread-pool-handler.js';
import { CHost, type CHostResult } from './c-host.js';

const POOL_APP = join(__dirname, '../fixtures/apps/pool-app.mjs');
const ROOT = join(__dirname, '../..');
/* Host mode's trace channel (it would capture this jest worker's console) and health watchdog (one more worker
 * thread) have no part in the contract. */
const HOST_MODE = { trace: false, watchdog: false } as const;

/* The same routes as pool-app.mjs, for SimpleHandler on the main thread. */
function app(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/slow') {
    setTimeout(() => res.end('slow done'), Number(url.searchParams.get('ms') ?? 200));
    return;
  }
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => res.end(Buffer.concat(parts)));
}

/** The handler, watched from the JS side: what the extension really ran, independent of the host's counters. */
interface Watched {
  readonly inner: IsapiHandler;
  readonly handler: IsapiHandler;
  handled: number;
  handledAfterTerminate: number;
  terminateCalls: number;
}

function watch(inner: IsapiHandler): Watched {
  const w: Watched = {
    inner,
    handled: 0,
    handledAfterTerminate: 0,
    terminateCalls: 0,
    handler: {
      start: () => inner.start?.(),
      handle: (ecb: Ecb) => {
        w.handled++;
        if (w.terminateCalls > 0) w.handledAfterTerminate++;
        return inner.handle(ecb);
      },
      terminate: () => {
        w.terminateCalls++;
        return inner.terminate();
      },
      get inFlight() {
        return inner.inFlight;
      },
    },
  };
  return w;
}

interface Setup {
  readonly kind: string;
  readonly make: () => IsapiHandler;
  readonly ready: (h: IsapiHandler) => Promise<void>;
}

const SETUPS: Setup[] = [
  { kind: 'SimpleHandler', make: () => new SimpleHandler(app), ready: async () => undefined },
  {
    kind: 'ThreadPoolHandler',
    make: () => new ThreadPoolHandler(POOL_APP, { workers: 2 }),
    ready: (h) => (h as ThreadPoolHandler).ready(),
  },
];

const models = (n: number, url: (i: number) => string, body?: (i: number) => Buffer): RequestModel[] =>
  Array.from({ length: n }, (_, i) => new RequestModel({ method: body ? 'POST' : 'GET', url: url(i), body: body?.(i) }));

function noViolations(r: CHostResult): boolean {
  return !r.timedOut && Object.values(r.violations).every((n) => n === 0);
}

/** The host's own refusal: complete, self-delimiting, the connection not kept, the session ended once. */
function isNative503(r: CHostResult): boolean {
  return (
    r.refused !== null &&
    r.status === '503 Service Unavailable' &&
    r.headerBlock === 'Content-Type: text/plain; charset=utf-8\r\nContent-Length: 20\r\nRetry-After: 1\r\n\r\n' &&
    r.body.toString() === 'Service Unavailable\n' &&
    r.keepConn === false &&
    r.httpStatusCode === 503 &&
    r.doneCount === 1 &&
    r.procResult === HSE_STATUS_PENDING
  );
}

/** Finish as a loader would even when a test failed half-way: terminate through the host if it did not yet. */
async function stop(ext: IsapiExtension, host: CHost): Promise<void> {
  try {
    if (host.stats().state !== 'terminated') await host.terminate(ext.nativeEntryPoints().TerminateExtension, { timeoutMs: 5000 });
  } finally {
    await ext.terminated;
    ext.dispose();
    await host.close();
  }
}

describe.each(SETUPS)('the loader contract through $kind', ({ make, ready }) => {
  test('TerminateExtension under load: 32 host threads, 2,000 slow requests, terminate in the middle', async () => {
    const watched = watch(make());
    const errors: unknown[] = [];
    const ext = createExtension(watched.handler, { onError: (e) => errors.push(e), ...HOST_MODE });
    const points = ext.nativeEntryPoints();
    const host = new CHost({ requireStart: true });
    try {
      // Before GetExtensionVersion the loader answers by itself.
      const [early] = await host.executeMany(models(1, () => '/early'), points.HttpExtensionProc, { threads: 1 });
      expect(isNative503(early as CHostResult)).toBe(true);
      expect(early?.refused).toBe('not-started');

      // GetExtensionVersion from a host thread (the JS thread stays free to run it).
      await expect(host.start(points.GetExtensionVersion)).resolves.toEqual({ ok: true, version: HSE_VERSION, description: DEFAULT_DESCRIPTION });
      await ready(watched.inner);

      const N = 2000;
      const started = Date.now();
      // 32 threads, each pausing 8 ms before each request: about 4,000 requests/s offered, for about half a second.
      const running = host.executeMany(models(N, (i) => `/slow?ms=20&i=${i}`), points.HttpExtensionProc, { threads: 32, intervalUs: 8000, timeoutMs: 20_000 });
      await host.waitFor('procCalls', 600);
      const t = await host.terminate(points.TerminateExtension, { flags: HSE_TERM_MUST_UNLOAD, timeoutMs: 15_000 });
      const results = await running;
      const elapsed = Date.now() - started;

      // The drain happened, then TerminateExtension ran once, and returned TRUE.
      expect(t).toMatchObject({ drained: true, terminateCalled: true, terminateResult: true, openSessionsAtTerminate: 0 });
      expect(t.openSessionsAtStop).toBeGreaterThan(0); // terminate really hit the middle: sessions were in flight
      expect(t.drainedSessions).toBe(t.openSessionsAtStop);
      expect(watched.terminateCalls).toBe(1);
      // The handler's own drain then finishes at once. (Its inFlight may still count a request whose DONE the host
      // already saw: ThreadPoolHandler learns of a worker's DONE one message later.)
      await ext.terminated;
      expect(watched.inner.inFlight).toBe(0);

      // Every request: a complete response or a clean 503, its session ended exactly once, no rule broken.
      const served = results.filter((r) => r.refused === null);
      const refused = results.filter((r) => r.refused !== null);
      for (const r of served) {
        expect(noViolations(r)).toBe(true);
        expect(r.doneCount).toBe(1);
        expect(r.procResult).toBe(HSE_STATUS_PENDING);
        expect(`${r.status} ${r.body.toString()}`).toBe('200 OK slow done');
      }
      for (const r of refused) {
        expect(noViolations(r)).toBe(true);
        expect(isNative503(r)).toBe(true);
        expect(['draining', 'terminated']).toContain(r.refused);
      }
      expect(served.length).toBeGreaterThanOrEqual(600);
      expect(refused.length).toBeGreaterThan(0);
      expect(served.length + refused.length).toBe(N);

      // After TerminateExtension nothing calls into JS: new requests get the host's 503, and the counters agree.
      const before = host.stats();
      const late = await host.executeMany(models(50, (i) => `/late/${i}`), points.HttpExtensionProc, { threads: 8 });
      const after = host.stats();
      for (const r of late) {
        expect(isNative503(r)).toBe(true);
        expect(r.refused).toBe('terminated');
      }
      expect(after.procCalls).toBe(before.procCalls);
      expect(after.completionCalls).toBe(before.completionCalls);
      expect(after.refusedAfterTerminate).toBe(before.refusedAfterTerminate + 50);
      expect(after).toMatchObject({
        state: 'terminated',
        terminateCalls: 1,
        startCalls: 1,
        callsAfterTerminate: 0,
        completionsRefused: 0,
        inFlight: 0,
        openSessions: 0,
        outstandingIo: 0,
        refusedNotStarted: 1,
      });
      expect(after.procCalls).toBe(served.length); // one call into JS per request served, none for the refused
      expect(after.completionCalls).toBeGreaterThan(0); // the library writes with async I/O: completions went through the gate
      expect(after.peakInFlight).toBeLessThanOrEqual(host.maxJsCalls);
      expect(watched.handled).toBe(served.length);
      expect(watched.handledAfterTerminate).toBe(0);
      expect(errors).toEqual([]);
      expect(elapsed).toBeLessThan(15_000);
    } finally {
      await stop(ext, host);
    }
  }, 30_000);

  test('the cap: 64 host threads, at most 16 calls into JS at once, every request served', async () => {
    const handler = make();
    const ext = createExtension(handler, { ...HOST_MODE });
    const points = ext.nativeEntryPoints();
    const host = new CHost({ requireStart: true, maxJsCalls: 16 });
    try {
      expect((await host.start(points.GetExtensionVersion)).ok).toBe(true);
      await ready(handler);
      // 400 echoes of up to 40 KB: HttpExtensionProc calls and write completions compete for the 16 places.
      const body = (i: number): Buffer => Buffer.alloc(1 + ((i * 7919) % 40_000), i & 0xff);
      const results = await host.executeMany(models(400, (i) => `/echo?i=${i}`, body), points.HttpExtensionProc, { threads: 64, timeoutMs: 20_000 });
      results.forEach((r, i) => {
        expect(noViolations(r)).toBe(true);
        expect(r.refused).toBeNull();
        expect(r.doneCount).toBe(1);
        expect(r.body.equals(body(i))).toBe(true);
      });
      const stats = host.stats();
      expect(stats.maxJsCalls).toBe(16);
      expect(stats.peakInFlight).toBeLessThanOrEqual(16);
      expect(stats.capWaits).toBeGreaterThan(0); // the cap really held threads back
      expect(stats.procCalls).toBe(400);
      const t = await host.terminate(points.TerminateExtension);
      expect(t).toMatchObject({ drained: true, terminateCalled: true, terminateResult: true, inFlightAtStop: 0, openSessionsAtStop: 0 });
    } finally {
      await stop(ext, host);
    }
  }, 30_000);

  test('kill switch: a client dropped mid-response ends each session once, with HSE_STATUS_ERROR', async () => {
    const handler = make();
    const errors: unknown[] = [];
    const ext = createExtension(handler, { onError: (e) => errors.push(e), ...HOST_MODE });
    const points = ext.nativeEntryPoints();
    const host = new CHost({ requireStart: true });
    try {
      await host.start(points.GetExtensionVersion);
      await ready(handler);
      const body = (i: number): Buffer => Buffer.alloc(200_000, i & 0xff);
      const results = await host.executeMany(models(24, (i) => `/echo?i=${i}`, body), points.HttpExtensionProc, {
        threads: 8,
        dropAfterBytes: 50_000,
        asyncDelayUs: 500,
        timeoutMs: 20_000,
      });
      for (const r of results) {
        expect(noViolations(r)).toBe(true);
        expect(r.clientDropped).toBe(true);
        expect(r.status).toBe('200 OK'); // the head went out before the client left
        expect(r.body.length).toBeLessThanOrEqual(50_000);
        expect(r.doneCount).toBe(1);
        expect(r.doneStatus).toBe(HSE_STATUS_ERROR);
      }
      const t = await host.terminate(points.TerminateExtension);
      expect(t).toMatchObject({ drained: true, terminateCalled: true });
    } finally {
      await stop(ext, host);
    }
  }, 30_000);
});

describe('GetServerVariable failing (kill switch) against the library', () => {
  /*
   * A failed GetServerVariable(ALL_RAW) must not be taken for an empty header block: the exchange falls back to
   * ALL_HTTP (src/http/raw-headers.ts rawFromAllHttp), or refuses the request when that fails too.
   */
  test('a request whose ALL_RAW cannot be read is not served with its headers silently dropped', async () => {
    let seen: Record<string, unknown> | null = null;
    const ext = createExtension(
      new SimpleHandler((req, res) => {
        seen = { ...req.headers };
        res.end('served');
      }),
      { onError: () => undefined },
    );
    const host = new CHost();
    try {
      const model = new RequestModel({ method: 'POST', url: '/form', headers: { 'Content-Type': 'text/plain', 'X-A': '1' }, body: 'hello' });
      const [r] = await host.executeMany([model], ext.nativeEntryPoints().HttpExtensionProc, { threads: 1, failVariable: 'ALL_RAW', timeoutMs: 5000 });
      const result = r as CHostResult;
      expect(noViolations(result)).toBe(true);
      const refused = result.procResult === HSE_STATUS_ERROR || (result.status ?? '').startsWith('5');
      const headersIntact = seen !== null && (seen as Record<string, unknown>)['x-a'] === '1' && (seen as Record<string, unknown>)['content-type'] === 'text/plain';
      expect(refused || headersIntact).toBe(true);
    } finally {
      ext.dispose();
      await host.close();
    }
  });
});

describe('why the cap exists', () => {
  /* A child process each: the ungated run is meant to crash. `ulimit -c 0` so that crash leaves no core file. */
  const run = (mode: 'gated' | 'ungated'): { status: number | null; signal: string | null; line: Record<string, unknown> | null } => {
    const r = spawnSync('/bin/sh', ['-c', 'ulimit -c 0; exec "$0" "$@"', process.execPath, '--import', './tools/ts-register.mjs', 'test/native/cap-scenario.ts', mode], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, ISAPI_HTTP_MAX_ASYNC_CALLS: '24' },
    });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    return { status: r.status, signal: r.signal, line: last.startsWith('{') ? (JSON.parse(last) as Record<string, unknown>) : null };
  };

  test('koffi max_async_calls 24, 64 host threads: through the gate (cap 16) the process lives; straight into koffi it dies', () => {
    const gated = run('gated');
    expect(gated.status).toBe(0);
    expect(gated.line).toMatchObject({ mode: 'gated', ok: 1000 });
    expect(gated.line?.peakInFlight as number).toBeLessThanOrEqual(16);
    expect(gated.line?.capWaits as number).toBeGreaterThan(0);

    // The same load without the gate overflows koffi's async slots: SIGSEGV, or V8's fatal error (exit 133).
    const ungated = run('ungated');
    expect(ungated.line).toBeNull();
    expect(ungated.status).not.toBe(0);
  }, 60_000);
});

describe('the reference host itself', () => {
  test('the cap must stay below koffi max_async_calls', () => {
    expect(() => new CHost({ maxJsCalls: 0 })).toThrow(RangeError);
    expect(() => new CHost({ maxJsCalls: 4096 })).toThrow(/max_async_calls/);
  });

  test('terminate runs once; a second one is refused and start() after it is refused', async () => {
    const host = new CHost();
    try {
      const t = await host.terminate(null);
      expect(t).toMatchObject({ drained: true, terminateCalled: false, terminateResult: null });
      await expect(host.terminate(null)).rejects.toThrow(/already ran/);
      await expect(host.start(1n)).rejects.toThrow(/refused/);
      expect(host.stats().state).toBe('terminated');
    } finally {
      await host.close();
    }
  });
});
