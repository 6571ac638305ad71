/**
 * npm run soak [-- --handler simple|threadpool|both] [--total 200000] [--every 20000] [--threads 16] [--no-trim]
 *
 * Memory soak through the C reference host (test/native/host.c), the way a loader drives an extension: a gated
 * CHost calls GetExtensionVersion (host mode: the watchdog for SimpleHandler, contained async errors; the trace
 * channel is off, because it would capture this script's console), then `total` requests through the native
 * HttpExtensionProc, then TerminateExtension. `--handler both` (the default) runs SimpleHandler and then
 * ThreadPoolHandler(2 workers), each in a child process of its own so that neither inherits the other's memory.
 *
 * Load: `threads` host threads (16) in a closed loop (each waits for its request's DONE_WITH_SESSION before the next:
 * 16 keep-alive clients), `threads` I/O threads for completions, the requests built in chunks of CHUNK (1,000) per
 * executeMany. The app (bench/apps/bench-app.ts): 3 of 4 requests GET /hello, 1 of 4 POST /echo with a 0–8 KB body
 * and a 1 KB read-ahead (so most echoes also read through ASYNC_READ_CLIENT). Every response is checked: status,
 * byte-exact body, DONE once, no host rule violation, no timeout; any failure fails the soak.
 *
 * Every `every` requests one sample, after: the handler's in-flight count has reached 0; the C host has freed the
 * requests it keeps after a run to catch late ECB touches (CHost.freeFinished; up to 4,096 requests, tens of MB:
 * test-harness memory that IIS does not have, measured and printed once as "C host's finished requests");
 * gc() (main thread and workers). Then: RSS as it is, RSS after malloc_trim(0) (unless --no-trim), glibc's malloc
 * in use and free (mallinfo2), the main thread's heap, each worker's heap, the handler's in-flight count, the
 * gate's open sessions, koffi's registered callbacks, and the window's req/s and host-seen p50/p99 latency.
 *
 * Verdict, over the samples after the warm-up (the first 40,000 requests: JIT, koffi's async memory, glibc's
 * arenas and V8's heap sizing all settle there), growth = least-squares slope × the span (160,000 requests by
 * default), so one noisy sample cannot decide it. The bounds, and the smallest steady leak each one catches:
 *  - malloc in use:     ≤ +1.5 MB  (~10 B/request: any native allocation left behind by 1 request in 3 or more)
 *  - RSS after trim:    ≤ +16 MB   (~100 B/request; coarse: V8's committed heap in each isolate moves by MBs)
 *  - heap used, main and each worker, after gc(): ≤ +1 MB (~6.5 B/request: far below one leaked request object)
 *  - koffi callbacks:   the same in every sample (the count before the first request is printed, not judged: the
 *                       watchdog thread registers its completion routine when it has started, a moment later)
 *  - in-flight and open sessions: 0 at every sample; failed requests: 0.
 * RSS before the trim is printed, not judged: it is what glibc chose to keep (below).
 * The bounds are for the default span; a much shorter --total makes them meaningless (the script says so).
 *
 * What the RSS numbers mean (investigated 2026-11, Linux x64, glibc 2.36, Node 20, koffi 3.3.4):
 *  - An earlier version of this soak ran each 20,000 requests as ONE open-loop executeMany and saw RSS go from
 *    114 MB to 525 MB after the first 20,000, then stay flat. That was the C host's own memory: CHost builds every
 *    native request of a run before it starts (20,000 × ~15 KB) and keeps up to 4,096 finished ones (~60 MB) to
 *    catch late ECB touches. After the run, glibc keeps what was freed: 300–420 MB free inside its arenas, almost
 *    all in the main arena (the JS thread builds the requests), so MALLOC_ARENA_MAX=1 changes nothing (RSS 564 MB),
 *    while malloc_trim(0) gives it back (566 → 153 MB). Not a leak, and not per-thread arenas.
 *  - There WAS a leak: koffi 3.3.4 leaks ~18 bytes of native memory per koffi.decode(ptr, type, length), and
 *    NativeEcb read every ANSI field that way: ~16–50 bytes per request, for ever (malloc in use +2.5 MB per
 *    160,000 requests). Fixed in src/ecb/native-ecb.ts, caught by test/ecb/native-memory.test.ts; this soak's
 *    malloc-in-use check is what found it.
 *  - What remains after the trim (≈ +55 MB for SimpleHandler, ≈ +95 MB for ThreadPoolHandler, reached within the
 *    first 20,000 requests and flat after) is V8's committed heap in each isolate (heapTotal 16 → 43 MB on the main
 *    thread while heapUsed stays ~11 MB), koffi's and the threads' memory, and pages of the arenas that are not
 *    wholly free.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { HSE_STATUS_PENDING } from '../src/ecb/constants.js';
import { getKoffi } from '../src/ecb/koffi.js';
import { RequestModel } from '../src/ecb/request-model.js';
import { createExtension } from '../src/handlers/create-extension.js';
import { SimpleHandler } from '../src/handlers/simple-handler.js';
import { ThreadPoolHandler } from '../src/handlers/thread-pool-handler.js';
import { CHost, type CHostResult } from '../test/native/c-host.js';
import { gcWorkers } from './apps/worker-gc.js';
import { loadGlibc, rssBreakdown } from '../test/support/native-memory.js';

const { values: opt } = parseArgs({
  options: {
    handler: { type: 'string', default: 'both' },
    total: { type: 'string', default: '200000' },
    every: { type: 'string', default: '20000' },
    threads: { type: 'string', default: '16' },
    'no-trim': { type: 'boolean', default: false },
  },
});
const KINDS = ['simple', 'threadpool'] as const;
type Kind = (typeof KINDS)[number];
const int = (name: string, v: string | undefined, min: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${v}`);
  return n;
};
const TOTAL = int('total', opt.total, 1);
const EVERY = int('every', opt.every, 1);
const THREADS = int('threads', opt.threads, 1);
if (opt.handler !== 'both' && !KINDS.includes(opt.handler as Kind)) throw new Error(`--handler must be simple, threadpool or both, got ${opt.handler}`);

/* ---------------------------------------------------------------------------------------------------------- */
/* --handler both: one child process per handler, one after the other                                          */
/* ---------------------------------------------------------------------------------------------------------- */

if (opt.handler === 'both') {
  const script = fileURLToPath(import.meta.url);
  const args = process.argv.slice(2).filter((a, i, all) => a !== '--handler' && all[i - 1] !== '--handler' && !a.startsWith('--handler='));
  let child: ReturnType<typeof spawn> | null = null;
  // A parent stopped by a signal takes its child with it: no stray soak keeps running.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      child?.kill(signal);
      process.exit(130);
    });
  }
  const verdicts: string[] = [];
  for (const kind of KINDS) {
    const code = await new Promise<number>((resolve, reject) => {
      child = spawn(process.execPath, [...process.execArgv, script, ...args, '--handler', kind], { stdio: 'inherit' });
      child.on('error', reject);
      child.on('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
    });
    child = null;
    verdicts.push(`${kind}: ${code === 0 ? 'SOAK PASS' : `SOAK FAIL (exit ${code})`}`);
    console.log('');
  }
  console.log(`soak summary: ${verdicts.join('; ')}`);
  process.exit(verdicts.every((v) => v.endsWith('PASS')) ? 0 : 1);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* One handler                                                                                                  */
/* ---------------------------------------------------------------------------------------------------------- */

const KIND = opt.handler as Kind;
const WORKERS = 2;
const CHUNK = Math.min(1000, EVERY);
const WARMUP = Math.min(40_000, Math.floor(TOTAL / 2));
const BOUND_MB = { malloc: 1.5, rssTrimmed: 16, heap: 1 };
const TRIM = !opt['no-trim'];
const gc = globalThis.gc;
if (!gc) throw new Error('run with node --expose-gc (npm run soak does)');
const glibc = loadGlibc();
const koffi = getKoffi();
const mb = (b: number): number => b / 1048576;

const appUrl = new URL('./apps/bench-app.ts', import.meta.url);
const { default: app } = (await import(appUrl.href)) as typeof import('./apps/bench-app.js');
const handler = KIND === 'simple' ? new SimpleHandler(app) : new ThreadPoolHandler(appUrl, { workers: WORKERS });
// trace: false: host mode's trace channel captures this thread's console, which would swallow the report.
const ext = createExtension(handler, { trace: false });
const points = ext.nativeEntryPoints();
const host = new CHost({ requireStart: true });
let stopped = false;
/** Terminate through the host (the loader's TerminateExtension), then release everything; also on a failure. */
async function stop(): Promise<void> {
  if (stopped) return;
  stopped = true;
  try {
    if (host.stats().state !== 'terminated') {
      const t = await host.terminate(points.TerminateExtension, { timeoutMs: 30_000 });
      if (!t.drained || t.terminateResult !== true) throw new Error(`TerminateExtension did not drain: ${JSON.stringify(t)}`);
    }
    await ext.terminated;
  } finally {
    ext.dispose();
    await host.close();
  }
}
/**
 * Host mode contains uncaught errors and keeps the event loop alive (its job inside IIS), so a soak that failed
 * while the extension is in host mode would hang: every failure ends the process explicitly, after a best-effort
 * stop, and a process still alive 15 s after its verdict is reported and ended too.
 */
function die(error: unknown): never {
  console.error(`soak (${KIND}) failed:`, error);
  process.exit(1);
}
process.on('SIGINT', () => void stop().finally(() => process.exit(130)));

/** Request i of the run: deterministic, so the expected response is rebuilt instead of stored. */
function request(i: number): { model: RequestModel; body: Buffer | null } {
  if (i % 4 !== 0) return { model: new RequestModel({ url: `/hello?i=${i}` }), body: null };
  const body = Buffer.allocUnsafe((i * 7919) % 8192);
  for (let j = 0; j < body.length; j++) body[j] = (i + j * 31) & 0xff;
  return { model: new RequestModel({ method: 'POST', url: `/echo?i=${i}`, body, readAhead: 1024 }), body };
}
const HELLO = Buffer.from('hello');

function failure(r: CHostResult, expected: Buffer | null): string | null {
  if (r.refused !== null) return `refused by the gate (${r.refused})`;
  if (r.timedOut) return 'timed out';
  if (r.procError !== null) return `proc threw ${String(r.procError)}`;
  if (r.procResult !== HSE_STATUS_PENDING) return `HttpExtensionProc returned ${r.procResult}`;
  if (r.doneCount !== 1) return `DONE_WITH_SESSION ${r.doneCount} times`;
  if (r.status !== '200 OK') return `status ${r.status} ${r.body.toString('latin1', 0, 200)}`;
  if (Object.values(r.violations).some((v) => v !== 0)) return `host rule violations ${JSON.stringify(r.violations)}`;
  if (!r.body.equals(expected ?? HELLO)) return `body of ${r.body.length} bytes differs from the expected ${(expected ?? HELLO).length}`;
  return null;
}

let failures = 0;
const failureExamples: string[] = [];
/** Requests [from, from + n) in chunks; returns host-seen latencies (ns). Every result is checked. */
async function window(from: number, n: number): Promise<Float64Array> {
  const lat = new Float64Array(n);
  for (let done = 0; done < n; done += CHUNK) {
    const reqs = Array.from({ length: Math.min(CHUNK, n - done) }, (_, j) => request(from + done + j));
    const results = await host.executeMany(reqs.map((r) => r.model), points.HttpExtensionProc, { threads: THREADS, ioThreads: THREADS, closedLoop: true, timeoutMs: 30_000 });
    results.forEach((r, j) => {
      lat[done + j] = r.endedNs - r.issuedNs;
      const why = failure(r, reqs[j]?.body ?? null);
      if (why === null) return;
      failures++;
      if (failureExamples.length < 5) failureExamples.push(`request ${from + done + j}: ${why}`);
    });
  }
  return lat;
}

interface Sample {
  requests: number; rssMB: number; rssTrimmedMB: number; arenasMB: number; brkMB: number; otherAnonMB: number;
  mallocMB: number; mallocFreeMB: number; heapMB: number; externalMB: number; workerHeapMB: number[];
  inFlight: number; openSessions: number; callbacks: number; reqps: number; p50ms: number; p99ms: number; failed: number;
}
const samples: Sample[] = [];
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
let hostFinishedMB = NaN;

async function sample(requests: number, reqps: number, lat: Float64Array | null, failed: number): Promise<Sample> {
  // ThreadPoolHandler learns of a worker's DONE by message, a moment after the host did: wait (bounded) for it.
  for (let t = 0; t < 200 && handler.inFlight > 0; t++) await new Promise((r) => setTimeout(r, 10));
  const before = glibc?.mallinfo().inUse ?? NaN;
  const freed = host.freeFinished();
  if (freed > 0 && Number.isNaN(hostFinishedMB)) hostFinishedMB = mb(before - (glibc?.mallinfo().inUse ?? NaN));
  let workerHeap: number[] = [];
  for (let i = 0; i < 3; i++) {
    gc?.();
    if (handler instanceof ThreadPoolHandler) workerHeap = await gcWorkers(WORKERS);
    await settle(); // finalizers and weak callbacks run between collections
  }
  const rss = process.memoryUsage().rss;
  const parts = rssBreakdown();
  const m = glibc?.mallinfo();
  if (TRIM) glibc?.trim();
  const mu = process.memoryUsage();
  const sorted = lat ? Float64Array.from(lat).sort() : null;
  const pct = (p: number): number => (sorted && sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number) / 1e6 : NaN);
  return {
    requests, rssMB: mb(rss), rssTrimmedMB: TRIM && glibc ? mb(mu.rss) : NaN, arenasMB: mb(parts?.arenas ?? NaN), brkMB: mb(parts?.brk ?? NaN),
    otherAnonMB: mb(parts?.otherAnon ?? NaN), mallocMB: mb(m?.inUse ?? NaN), mallocFreeMB: mb(m?.free ?? NaN), heapMB: mb(mu.heapUsed),
    externalMB: mb(mu.external), workerHeapMB: workerHeap.map(mb), inFlight: handler.inFlight, openSessions: host.stats().openSessions,
    callbacks: koffi.stats().callbacks, reqps, p50ms: pct(0.5), p99ms: pct(0.99), failed,
  };
}

const name = KIND === 'simple' ? 'SimpleHandler' : `ThreadPoolHandler(${WORKERS} workers)`;
console.log(`soak: ${name}, ${TOTAL} requests, a sample every ${EVERY}; ${THREADS} host threads in a closed loop, ${THREADS} I/O threads; ` +
  `node ${process.version}, koffi ${koffi.version}, ${os.cpus()[0]?.model ?? '?'} ×${os.cpus().length}; MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? 'unset'}`);
console.log(`load average at start: ${os.loadavg().map((x) => x.toFixed(2)).join(', ')}`);
let base: Sample;
try {
  const started = await host.start(points.GetExtensionVersion);
  if (!started.ok) throw new Error('GetExtensionVersion returned FALSE');
  if (handler instanceof ThreadPoolHandler) await handler.ready();
  base = await sample(0, 0, null, 0);
} catch (error) {
  await stop().catch((e: unknown) => console.error('stopping after the failure failed too:', e));
  die(error);
}
const head = ['requests', 'RSS MB', 'trimmed', 'arenas', 'brk', 'other anon', 'malloc used', 'malloc free', 'heap MB', 'worker heaps', 'in-flight', 'open', 'koffi cb', 'req/s', 'p50 ms', 'p99 ms', 'failed'];
const f1 = (x: number): string => (Number.isNaN(x) ? '-' : x.toFixed(1));
const f2 = (x: number): string => (Number.isNaN(x) ? '-' : x.toFixed(2));
const row = (s: Sample): string[] => [String(s.requests), f1(s.rssMB), f1(s.rssTrimmedMB), f1(s.arenasMB), f1(s.brkMB), f1(s.otherAnonMB), f2(s.mallocMB), f1(s.mallocFreeMB), f2(s.heapMB),
  s.workerHeapMB.map(f2).join('/') || '-', String(s.inFlight), String(s.openSessions), String(s.callbacks), s.reqps ? s.reqps.toFixed(0) : '-', f2(s.p50ms), f2(s.p99ms), String(s.failed)];
const print = (cells: string[]): void => console.log(cells.map((c, i) => c.padStart(Math.max((head[i] as string).length, i === 9 ? 11 : 6))).join(' '));
console.log('RSS MB = as it is; trimmed = after malloc_trim(0); arenas/brk/other anon = resident MB by mapping (test/support/native-memory.ts);');
console.log('malloc used/free = glibc mallinfo2 in use / free in arenas; heap = V8 heapUsed after gc(); open = sessions open at the gate');
print(head);
print(row(base));

try {
  for (let done = 0; done < TOTAL; ) {
    const n = Math.min(EVERY, TOTAL - done);
    const failedBefore = failures;
    const t0 = process.hrtime.bigint();
    const lat = await window(done, n);
    const reqps = n / (Number(process.hrtime.bigint() - t0) / 1e9); // includes building and checking the requests
    done += n;
    const s = await sample(done, reqps, lat, failures - failedBefore);
    samples.push(s);
    print(row(s));
  }
} catch (error) {
  await stop().catch((e: unknown) => console.error('stopping after the failure failed too:', e));
  die(error);
}
await stop().catch(die);

/* ---------------------------------------------------------------------------------------------------------- */
/* Verdict                                                                                                      */
/* ---------------------------------------------------------------------------------------------------------- */

const after = samples.filter((s) => s.requests >= WARMUP);
const span = after.length > 1 ? (after[after.length - 1] as Sample).requests - (after[0] as Sample).requests : 0;
/** Least-squares rise of f over the post-warm-up samples, in MB. */
function rise(f: (s: Sample) => number): number {
  if (after.length < 2) return NaN;
  const xs = after.map((s) => s.requests);
  const ys = after.map(f);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  const sxy = xs.reduce((a, x, i) => a + (x - mx) * ((ys[i] as number) - my), 0);
  const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  return (sxy / sxx) * span;
}
const growth = (what: string, f: (s: Sample) => number, bound: number): [string, boolean] => {
  const g = rise(f);
  const first = after[0] ? f(after[0]) : NaN;
  const last = after.length ? f(after[after.length - 1] as Sample) : NaN;
  const perReq = ((g * 1048576) / span).toFixed(1);
  return [`${what}: ${first.toFixed(2)} → ${last.toFixed(2)} MB, fitted ${g >= 0 ? '+' : ''}${g.toFixed(2)} MB = ${perReq} B/request (bound +${bound} MB)`, g <= bound];
};
const slots = new Set(samples.map((s) => s.callbacks));
const checks: [string, boolean][] = [
  ...(glibc ? [growth('malloc in use', (s) => s.mallocMB, BOUND_MB.malloc)] : []),
  ...(glibc && TRIM ? [growth('RSS after malloc_trim', (s) => s.rssTrimmedMB, BOUND_MB.rssTrimmed)] : []),
  growth('main heap used', (s) => s.heapMB, BOUND_MB.heap),
  ...base.workerHeapMB.map((_, w) => growth(`worker ${w} heap used`, (s) => s.workerHeapMB[w] ?? NaN, BOUND_MB.heap)),
  [`koffi callbacks: ${[...slots].join(', ')} in every sample (must be one value; ${base.callbacks} before the first request, ` +
    `when a thread that registers its own, such as the watchdog's, may not have started yet)`, slots.size === 1],
  [`in-flight / open sessions at each sample: max ${Math.max(...samples.map((s) => s.inFlight))} / ${Math.max(...samples.map((s) => s.openSessions))} (must be 0)`,
    samples.every((s) => s.inFlight === 0 && s.openSessions === 0)],
  [`failed requests: ${failures} of ${TOTAL}${failureExamples.length ? ` (${failureExamples.join('; ')})` : ''}`, failures === 0],
];
const rawRise = rise((s) => s.rssMB);
console.log(`\nwarm-up: the first ${WARMUP} requests; judged: ${after[0]?.requests ?? '-'} → ${after[after.length - 1]?.requests ?? '-'} (${span} requests)` +
  (span < 100_000 ? ' (a short span: the bounds are sized for 160,000 requests, so this verdict means little)' : ''));
if (!Number.isNaN(hostFinishedMB)) console.log(`C host's finished requests (test harness memory, freed before each sample): ${hostFinishedMB.toFixed(1)} MB of malloc at the first sample`);
console.log(`RSS as it is (not judged): ${base.rssMB.toFixed(1)} MB at start, ${samples[0]?.rssMB.toFixed(1)} MB after ${samples[0]?.requests}, fitted ${rawRise >= 0 ? '+' : ''}${rawRise.toFixed(1)} MB after the warm-up`);
console.log('verdict:');
for (const [what, ok] of checks) console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
const pass = checks.every(([, ok]) => ok);
console.log(`${name}: ${pass ? 'SOAK PASS' : 'SOAK FAIL'}`);

const out = new URL('./results/', import.meta.url);
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(new URL(`soak-${KIND}.json`, out), JSON.stringify({
  node: process.version, koffi: koffi.version, cpu: os.cpus()[0]?.model, cores: os.cpus().length, date: new Date().toISOString(), loadavgAtEnd: os.loadavg(),
  config: { handler: KIND, total: TOTAL, every: EVERY, threads: THREADS, ioThreads: THREADS, closedLoop: true, chunk: CHUNK, trim: TRIM && Boolean(glibc), warmup: WARMUP, boundMB: BOUND_MB, mallocArenaMax: process.env.MALLOC_ARENA_MAX ?? null },
  hostFinishedMB, base, samples, checks: checks.map(([what, ok]) => ({ what, ok })), pass,
}, null, 2));
process.exitCode = pass ? 0 : 1;
setTimeout(() => die(new Error('the process is still running 15 s after the verdict: something keeps its event loop alive')), 15_000).unref();
