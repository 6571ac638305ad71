/**
 * npm run bench:handlers — SimpleHandler vs ThreadPoolHandler(2 workers), driven by the C reference host
 * (test/native/host.c) from 4 and from 32 host threads, on a trivial route and on a CPU-bound one (≈2 ms of
 * synchronous work per request). Target (issue 4 item 8): on the CPU-bound route ThreadPoolHandler reaches
 * ≥ 1.6 × SimpleHandler's req/s. Prints a table and PASS/MISS; writes bench/results/handlers.json.
 *
 * The path is the one a loader DLL drives (docs/native-host.md): each extension has its own gated CHost, is started
 * with GetExtensionVersion from a host thread (host mode: contained async errors, and the watchdog for
 * SimpleHandler; the trace channel is off because it would capture this script's console), is called through its
 * native HttpExtensionProc, and is stopped with TerminateExtension, which must drain.
 *
 * Load model: closed loop. Each host thread is one keep-alive client: it calls HttpExtensionProc, waits for that
 * session's DONE_WITH_SESSION, then sends its next request (CHost `closedLoop`). So 4 or 32 requests are in flight,
 * and latency means something (an open-loop flood of n requests only measures queueing: latency ≈ n / throughput).
 *
 * What is measured, all on the host's clock (CLOCK_MONOTONIC, stamped in C, never in JS):
 *  - latency = from the host thread taking the request (before the gate and the call into JS) to the host receiving
 *    DONE_WITH_SESSION for it; p50 and p99 over the run;
 *  - req/s = n / (first request issued → last DONE). Building the native requests before a run and reading the
 *    results after it (CHost's JS work) is outside that span.
 * Every response is checked (status, exact body, DONE once, no host rule violation, no timeout, not refused by the
 * gate); a failed request is printed and makes the bench exit 1, whatever the ratios.
 *
 * Noise: rounds alternate which handler goes first, so drift hits both; the target is the median over rounds of the
 * per-round ratio. This machine is shared: /proc/stat tells how many cores other processes used during each pair of
 * runs; before each pair the bench waits for a quiet quarter second (60 s in all at most), a pair during which
 * they used more than CONTENDED cores is repeated (a bounded number of times; the discarded runs are kept in the
 * JSON), and a MISS under contention says so. MISS is a result, not an error: the exit code is 1 only when a request
 * failed or the bench itself did. Load averages at start and end are printed and recorded.
 *
 *   BENCH_ROUNDS (5), BENCH_N_TRIVIAL (3000), BENCH_N_CPU (300), BENCH_THREADS (4,32)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { HSE_STATUS_PENDING } from '../src/ecb/constants.js';
import { getKoffi } from '../src/ecb/koffi.js';
import { RequestModel } from '../src/ecb/request-model.js';
import { createExtension, type IsapiExtension } from '../src/handlers/create-extension.js';
import { SimpleHandler } from '../src/handlers/simple-handler.js';
import { ThreadPoolHandler } from '../src/handlers/thread-pool-handler.js';
import { CHost, type CHostResult } from '../test/native/c-host.js';
import app, { work } from './apps/bench-app.js';

const positive = (name: string, fallback: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
};
const ROUNDS = positive('BENCH_ROUNDS', 5);
const N = { trivial: positive('BENCH_N_TRIVIAL', 3000), cpu: positive('BENCH_N_CPU', 300) };
const THREADS = (process.env.BENCH_THREADS ?? '4,32').split(',').map((t) => {
  const n = Number(t);
  if (!Number.isInteger(n) || n < 1 || n > 63) throw new Error(`BENCH_THREADS: host thread counts from 1 to 63 (the gate's cap is 64), got ${t}`);
  return n;
});
const WORKERS = 2;
const TARGET = 1.6;
const CPU_MS = 2;
/**
 * A pair of runs during which other processes used more than CONTENDED cores is repeated, up to RETRIES times per
 * pair and REPEAT_BUDGET times in all (so a busy machine cannot stretch the bench past a few minutes).
 */
const CONTENDED = 0.25;
const RETRIES = 2;
const REPEAT_BUDGET = 12;
/** Before each pair, wait (up to this much in all) for a quarter second in which other processes stayed quiet. */
const QUIET_WAIT_BUDGET_MS = 60_000;
let quietWaitedMs = 0;
const loadStart = os.loadavg();

/* ---------------------------------------------------------------------------------------------------------- */
/* Calibration: /cpu = a fixed number of iterations, ≈2 ms on an idle core, set before any worker starts        */
/* ---------------------------------------------------------------------------------------------------------- */

function calibrate(): { iters: number; msPerCall: number } {
  for (let i = 0; i < 20; i++) work(200_000); // let TurboFan optimise the loop first
  // The minimum of 9: the sample least disturbed by preemption on a shared machine.
  const timeMs = (iters: number): number =>
    Math.min(...Array.from({ length: 9 }, () => {
      const t = process.hrtime.bigint();
      work(iters);
      return Number(process.hrtime.bigint() - t) / 1e6;
    }));
  let iters = 1_000_000;
  for (let pass = 0; pass < 3; pass++) iters = Math.max(1, Math.round((iters * CPU_MS) / timeMs(iters)));
  return { iters, msPerCall: timeMs(iters) };
}
const calibration = calibrate();
process.env.BENCH_CPU_ITERS = String(calibration.iters); // read by bench-app.ts per request; workers copy process.env
const EXPECTED = { trivial: Buffer.from('hello'), cpu: Buffer.from(String(work(calibration.iters))) };

/**
 * CPU time used by the whole machine (busy + steal, in USER_HZ = 1/100 s), from /proc/stat; minus this process's
 * own CPU it gives the cores other processes took. Linux only: NaN elsewhere.
 */
function machineJiffies(): number {
  try {
    const f = (fs.readFileSync('/proc/stat', 'latin1').split('\n')[0] as string).trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f as number[];
    return (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  } catch {
    return NaN;
  }
}

/** Other processes' CPU use over `ms`, in cores. */
async function othersOver(ms: number): Promise<number> {
  const [cpu0, j0, t0] = [process.cpuUsage(), machineJiffies(), process.hrtime.bigint()];
  await new Promise((r) => setTimeout(r, ms));
  const [cpu, j1, wallMs] = [process.cpuUsage(cpu0), machineJiffies(), Number(process.hrtime.bigint() - t0) / 1e6];
  return ((j1 - j0) * 10) / wallMs - (cpu.user + cpu.system) / 1000 / wallMs;
}

/** Wait until the machine looks quiet, within what is left of QUIET_WAIT_BUDGET_MS. */
async function waitForQuiet(): Promise<void> {
  while (quietWaitedMs < QUIET_WAIT_BUDGET_MS) {
    const t0 = Date.now();
    const others = await othersOver(250);
    if (!(others > CONTENDED)) return;
    await new Promise((r) => setTimeout(r, 750));
    quietWaitedMs += Date.now() - t0;
  }
}

/* ---------------------------------------------------------------------------------------------------------- */
/* The two extensions, each behind its own loader (a gated CHost), started as IIS would                         */
/* ---------------------------------------------------------------------------------------------------------- */

type Kind = 'simple' | 'pool';
type Workload = 'trivial' | 'cpu';
const KINDS: Kind[] = ['simple', 'pool'];
const WORKLOADS: Workload[] = ['trivial', 'cpu'];
const LABEL: Record<Kind, string> = { simple: 'SimpleHandler', pool: `ThreadPool(${WORKERS})` };

interface Served { ext: IsapiExtension; host: CHost; proc: bigint }
const served: Partial<Record<Kind, Served>> = {};
const use = (kind: Kind): Served => {
  const s = served[kind];
  if (!s) throw new Error(`${LABEL[kind]} is not started`);
  return s;
};
/**
 * Host mode contains uncaught errors and keeps the event loop alive (that is its job inside IIS), so a bench that
 * failed while an extension is still in host mode would hang instead of exiting. Every failure therefore ends the
 * process explicitly, after a best-effort shutdown; and a process still alive 15 s after its report is reported and
 * ended too. No stray bench process either way.
 */
function die(error: unknown): never {
  console.error('bench:handlers failed:', error);
  process.exit(1);
}
async function start(): Promise<void> {
  const pool = new ThreadPoolHandler(new URL('./apps/bench-app.ts', import.meta.url), { workers: WORKERS });
  for (const [kind, handler] of [['simple', new SimpleHandler(app)], ['pool', pool]] as const) {
    // trace: false: host mode's trace channel captures this thread's console, which would swallow the report.
    const ext = createExtension(handler, { trace: false });
    const host = new CHost({ requireStart: true });
    const points = ext.nativeEntryPoints();
    served[kind] = { ext, host, proc: points.HttpExtensionProc };
    const started = await host.start(points.GetExtensionVersion);
    if (!started.ok) throw new Error(`${LABEL[kind]}: GetExtensionVersion returned FALSE`);
  }
  await pool.ready();
}

/** TerminateExtension through each loader (it must drain), then release everything. Runs on failure too. */
async function shutdown(): Promise<void> {
  const problems: string[] = [];
  for (const kind of KINDS) {
    const s = served[kind];
    if (!s) continue;
    delete served[kind];
    try {
      const t = await s.host.terminate(s.ext.nativeEntryPoints().TerminateExtension, { timeoutMs: 30_000 });
      if (!t.drained || t.terminateResult !== true) problems.push(`${LABEL[kind]}: TerminateExtension did not drain (${JSON.stringify(t)})`);
      await s.ext.terminated;
    } finally {
      s.ext.dispose();
      await s.host.close();
    }
  }
  if (problems.length) throw new Error(problems.join('\n'));
}

/* ---------------------------------------------------------------------------------------------------------- */
/* One run                                                                                                      */
/* ---------------------------------------------------------------------------------------------------------- */

interface Run {
  kind: Kind; workload: Workload; threads: number; round: number; n: number; failures: number;
  reqps: number; p50: number; p99: number; max: number;
  /** Cores this process used, and cores all other processes used, over the run (executeMany as a whole). */
  cores: number; otherCores: number;
}
const failureExamples: string[] = [];

function failure(r: CHostResult, expected: Buffer): string | null {
  if (r.refused !== null) return `refused by the gate (${r.refused})`;
  if (r.timedOut) return 'timed out';
  if (r.procError !== null) return `proc threw ${String(r.procError)}`;
  if (r.procResult !== HSE_STATUS_PENDING) return `HttpExtensionProc returned ${r.procResult}`;
  if (r.doneCount !== 1) return `DONE_WITH_SESSION ${r.doneCount} times`;
  if (r.status !== '200 OK') return `status ${r.status}: ${r.body.toString('latin1', 0, 200)}`;
  if (Object.values(r.violations).some((v) => v !== 0)) return `host rule violations ${JSON.stringify(r.violations)}`;
  if (!r.body.equals(expected)) return `body "${r.body.toString('latin1', 0, 40)}" is not "${expected.toString('latin1', 0, 40)}"`;
  if (!(r.issuedNs > 0 && r.endedNs >= r.issuedNs)) return `host timestamps ${r.issuedNs} → ${r.endedNs}`;
  return null;
}

async function run(kind: Kind, workload: Workload, threads: number, n: number, round: number): Promise<Run> {
  const { host, proc } = use(kind);
  const models = Array.from({ length: n }, () => new RequestModel({ url: workload === 'cpu' ? '/cpu' : '/hello' }));
  globalThis.gc?.(); // start each run without the previous one's garbage
  const [cpu0, jiffies0, t0] = [process.cpuUsage(), machineJiffies(), process.hrtime.bigint()];
  const results = await host.executeMany(models, proc, { threads, ioThreads: threads, closedLoop: true, timeoutMs: 60_000 });
  const [cpu, jiffies, wallMs] = [process.cpuUsage(cpu0), machineJiffies(), Number(process.hrtime.bigint() - t0) / 1e6];
  let failures = 0;
  for (const r of results) {
    const why = failure(r, EXPECTED[workload]);
    if (why === null) continue;
    failures++;
    if (failureExamples.length < 10) {
      failureExamples.push(`${LABEL[kind]} ${workload} ×${threads}: ${why}`);
      console.error(`  FAILED REQUEST: ${failureExamples[failureExamples.length - 1]}`);
    }
  }
  const ok = results.filter((r) => r.issuedNs > 0 && r.endedNs >= r.issuedNs);
  const first = Math.min(...ok.map((r) => r.issuedNs));
  const last = Math.max(...ok.map((r) => r.endedNs));
  const lat = Float64Array.from(ok, (r) => (r.endedNs - r.issuedNs) / 1e6).sort();
  const pct = (p: number): number => (lat.length ? (lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] as number) : NaN);
  const cores = (cpu.user + cpu.system) / 1000 / wallMs;
  return {
    kind, workload, threads, round, n, failures, reqps: ok.length / ((last - first) / 1e9), p50: pct(0.5), p99: pct(0.99), max: pct(1),
    cores, otherCores: ((jiffies - jiffies0) * 10) / wallMs - cores,
  };
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Rounds                                                                                                       */
/* ---------------------------------------------------------------------------------------------------------- */

const cpuModel = os.cpus()[0]?.model ?? 'unknown';
console.log(`bench:handlers — node ${process.version}, koffi ${getKoffi().version}, ${cpuModel} ×${os.cpus().length}; load average ${loadStart.map((x) => x.toFixed(2)).join(', ')}`);
console.log(`closed loop (each host thread waits for its DONE_WITH_SESSION), ${ROUNDS} rounds, n = ${N.trivial} trivial / ${N.cpu} cpu per run, ` +
  `host threads ${THREADS.join(' and ')} (+ as many I/O threads)`);
console.log(`/cpu = ${calibration.iters} xorshift iterations = ${calibration.msPerCall.toFixed(2)} ms on an idle core (calibrated now); ThreadPoolHandler: ${WORKERS} workers`);

const runs: Run[] = [];
const discarded: Run[] = [];
let exitCode = 0;
try {
  await start();
  // Warm-up, discarded: JIT, the workers' first requests, koffi's async memory, the host's thread start-up.
  for (const kind of KINDS) {
    await run(kind, 'trivial', Math.max(...THREADS), 1000, -1);
    await run(kind, 'cpu', Math.max(...THREADS), 100, -1);
  }
  for (const threads of THREADS) {
    for (const workload of WORKLOADS) {
      for (let round = 0; round < ROUNDS; round++) {
        const order: Kind[] = round % 2 ? ['pool', 'simple'] : ['simple', 'pool'];
        for (let attempt = 0; ; attempt++) {
          await waitForQuiet();
          const pair: Run[] = [];
          for (const kind of order) pair.push(await run(kind, workload, threads, N[workload], round));
          const others = Math.max(...pair.map((r) => r.otherCores));
          if (!(others > CONTENDED) || attempt === RETRIES || discarded.length / 2 >= REPEAT_BUDGET) {
            runs.push(...pair);
            break;
          }
          console.error(`  ${workload} ×${threads} round ${round}: other processes used ${others.toFixed(2)} cores; repeating the pair`);
          discarded.push(...pair);
        }
      }
    }
  }
} catch (error) {
  await shutdown().catch((e: unknown) => console.error('shutdown after the failure failed too:', e));
  die(error);
}
await shutdown().catch(die);

/* ---------------------------------------------------------------------------------------------------------- */
/* Report                                                                                                       */
/* ---------------------------------------------------------------------------------------------------------- */

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const head = ['threads', 'workload', 'handler', 'req/s', 'req/s range', 'p50 ms', 'p99 ms', 'failed', 'CPU cores', 'others'];
const rows: string[][] = [];
const summary: Record<string, unknown>[] = [];
for (const threads of THREADS) {
  for (const workload of WORKLOADS) {
    for (const kind of KINDS) {
      const rs = runs.filter((r) => r.threads === threads && r.workload === workload && r.kind === kind);
      const agg = {
        threads, workload, handler: kind, reqps: median(rs.map((r) => r.reqps)), reqpsMin: Math.min(...rs.map((r) => r.reqps)), reqpsMax: Math.max(...rs.map((r) => r.reqps)),
        p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), failures: rs.reduce((s, r) => s + r.failures, 0),
        cores: median(rs.map((r) => r.cores)), otherCoresMax: Math.max(...rs.map((r) => r.otherCores)),
      };
      summary.push(agg);
      const f = (x: number): string => x.toFixed(x < 10 ? 2 : 1);
      rows.push([String(threads), workload, LABEL[kind], agg.reqps.toFixed(0), `${agg.reqpsMin.toFixed(0)}–${agg.reqpsMax.toFixed(0)}`, f(agg.p50), f(agg.p99),
        String(agg.failures), agg.cores.toFixed(2), agg.otherCoresMax.toFixed(2)]);
    }
  }
}
const widths = head.map((h, c) => Math.max(h.length, ...rows.map((l) => (l[c] as string).length)));
console.log('\nmedians over rounds; latency = host thread takes the request → host receives DONE_WITH_SESSION (host clock);');
console.log('req/s = n / (first issue → last DONE); CPU cores = this process; others = max cores other processes used during a run');
for (const l of [head, widths.map((w) => '-'.repeat(w)), ...rows]) console.log(l.map((x, c) => x.padStart(widths[c] as number)).join('  '));

const targets = THREADS.map((threads) => {
  const ratios = Array.from({ length: ROUNDS }, (_, round) => {
    const get = (kind: Kind): number => runs.find((r) => r.threads === threads && r.workload === 'cpu' && r.kind === kind && r.round === round)?.reqps ?? NaN;
    return get('pool') / get('simple');
  });
  const ratio = median(ratios);
  const failed = runs.filter((r) => r.threads === threads).reduce((s, r) => s + r.failures, 0);
  const others = Math.max(...runs.filter((r) => r.threads === threads && r.workload === 'cpu').map((r) => r.otherCores));
  return { threads, ratio, ratios, otherCoresMax: others, failed, pass: ratio >= TARGET && failed === 0 };
});
console.log(`\ntarget: CPU-bound (${calibration.msPerCall.toFixed(2)} ms/request) ThreadPool(${WORKERS}) req/s ≥ ${TARGET} × SimpleHandler req/s (median of per-round ratios)`);
for (const t of targets) {
  const note = t.failed ? ` (${t.failed} failed requests)` : !t.pass && t.otherCoresMax > CONTENDED ? ` (other processes used up to ${t.otherCoresMax.toFixed(2)} cores during these runs)` : '';
  console.log(`  ${String(t.threads).padStart(2)} host threads: ${t.ratio.toFixed(2)}× (rounds ${t.ratios.map((r) => r.toFixed(2)).join(', ')})  ${t.pass ? 'PASS' : 'MISS'}${note}`);
}
const loadEnd = os.loadavg();
const failedTotal = runs.reduce((s, r) => s + r.failures, 0) + discarded.reduce((s, r) => s + r.failures, 0);
console.log(`overall: ${targets.every((t) => t.pass) ? 'PASS' : 'MISS'}; load average at the end ${loadEnd.map((x) => x.toFixed(2)).join(', ')}; ` +
  `${discarded.length / 2} pairs repeated for contention; ${(quietWaitedMs / 1000).toFixed(0)} s spent waiting for a quiet machine`);
if (failedTotal > 0) {
  console.error(`FAIL: ${failedTotal} requests failed (first: ${failureExamples.join('; ')})`);
  exitCode = 1;
}

const out = new URL('./results/', import.meta.url);
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(new URL('handlers.json', out), JSON.stringify({
  node: process.version, v8: process.versions.v8, koffi: getKoffi().version, cpu: cpuModel, cores: os.cpus().length, date: new Date().toISOString(),
  loadavg: { start: loadStart, end: loadEnd }, quietWaitedMs,
  config: { rounds: ROUNDS, n: N, threads: THREADS, ioThreads: 'same as threads', closedLoop: true, workers: WORKERS, target: TARGET, contendedCores: CONTENDED, retries: RETRIES, repeatBudget: REPEAT_BUDGET, quietWaitBudgetMs: QUIET_WAIT_BUDGET_MS },
  calibration, summary, targets, failures: failedTotal, failureExamples, runs, discarded,
}, null, 2));
console.log(`\nwrote ${fileURLToPath(new URL('handlers.json', out))}`);
process.exitCode = exitCode;
setTimeout(() => die(new Error('the process is still running 15 s after the report: something keeps its event loop alive')), 15_000).unref();
