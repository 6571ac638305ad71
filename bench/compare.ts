/**
 * npm run bench — what the ISAPI path costs next to the usual ways of running a Node app without a socket, and
 * next to node:http over loopback (issue 6 item 4). One run, two apps (a plain listener that ends with "hello",
 * and an Express 5 hello-world), every path measured round after round in rotating order so that the noise of a
 * shared machine hits every path alike; reported as medians over rounds and as per-round ratios to an anchor.
 *
 * In-process paths (the JS thread of this process serves; a closed loop of BENCH_CONCURRENCY requests in flight,
 * each request timed from its start to the moment the caller has the response):
 *  1. direct         the listener called with a minimal IncomingMessage/ServerResponse pair whose socket is a
 *                    Writable that drops the bytes; done at 'finish'. The ceiling. (anchor)
 *  2. light-my-request  inject(listener, { method, url, headers }). (anchor)
 *  3. serverless-http   serverless(app)(API Gateway REST (v1) proxy event, context). (anchor)
 *  4. inject()       isapi-http's inject() on a MockEcb (the default): the whole ISAPI path plus the parsed response.
 *  5. EmulatedHost   the native path in one thread: ONE EmulatedHost reused for every request, host.execute(request,
 *                    extension.nativeEntryPoints().HttpExtensionProc): a native ECB in koffi memory, the native
 *                    proc pointer, NativeEcb, callbacks through koffi. (inject(app, { native: true }) is the same
 *                    path plus a new EmulatedHost, i.e. four koffi callback registrations, per request.)
 *  6. C host         the C reference host (test/native/host.c) calling from 4 host threads through koffi's relay,
 *                    SimpleHandler and ThreadPoolHandler (2 workers). The host floods (a thread does not wait for a
 *                    PENDING session), so these rows are not closed loops: req/s = n / (first JS entry → last
 *                    response 'finish'); latency = JS entry → 'finish' (bench/compare/apps.ts timed()), which leaves
 *                    out the time a host thread waits in koffi's relay before JS takes its call.
 * Loopback (7): node:http and isapi-http's createServer, in a child process (bench/compare/servers.ts), both driven
 * by the same undici Pool (BENCH_CONCURRENCY connections, no pipelining) from this process. Anchor: node:http.
 *
 * Ratios: for every round, the row's req/s ÷ the best anchor's req/s in that round (best = highest median req/s
 * among the anchors of that app; for p99, the lowest median p99), then the median over rounds.
 * Targets (plain listener): inject() ≥ 1.5 × light-my-request, inject() ≥ serverless-http, EmulatedHost ≥ 0.8 ×
 * inject(). Express: every isapi-http in-process row ≥ 0.9 × the best anchor. Printed PASS/MISS; JSON to
 * bench/results/bench.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import lightMyRequest from 'light-my-request';
import serverless from 'serverless-http';
import { Pool } from 'undici';
import { RequestModel } from '../src/ecb/request-model.js';
import { createExtension, type IsapiExtension } from '../src/handlers/create-extension.js';
import { SimpleHandler } from '../src/handlers/simple-handler.js';
import { ThreadPoolHandler } from '../src/handlers/thread-pool-handler.js';
import { EmulatedHost } from '../src/host/emulated-host.js';
import { inject } from '../src/testing/inject.js';
import { CHost } from '../test/native/c-host.js';
import { createExpressApp, plainListener, privateExpress, shareFinishTimes, timed, type Listener } from './compare/apps.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS) || 9;
const ROUND_MS = Number(process.env.BENCH_ROUND_MS) || 400;
const LOOPBACK_MS = Number(process.env.BENCH_LOOPBACK_MS) || 1000;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY) || 10;
const HOST_THREADS = 4;
const WORKERS = 2;
const HEADERS = { host: 'localhost', 'user-agent': 'isapi-http-bench', accept: '*/*' } as const;
const BODY = 'hello';

type AppName = 'plain' | 'express';
type Group = 'in-process' | 'loopback';
interface Sample { n: number; reqps: number; p50: number; p99: number }
interface Variant {
  readonly app: AppName;
  readonly group: Group;
  readonly key: string;
  readonly label: string;
  readonly anchor: boolean;
  /** isapi-http's own path (targets apply to these). */
  readonly ours: boolean;
  run(ms: number): Promise<Sample>;
  readonly samples: Sample[];
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const quantile = (sorted: Float64Array, q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;

function summarise(latencies: Float64Array, n: number, seconds: number): Sample {
  const sorted = latencies.subarray(0, n).sort();
  return { n, reqps: n / seconds, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
}

/**
 * A closed loop: `concurrency` callers, each starting its next request when the previous one is done, until `ms`
 * have passed. `once(slot)` resolves with the status code; anything but 200 stops the bench.
 */
async function closedLoop(once: (slot: number) => Promise<number>, ms: number, concurrency = CONCURRENCY): Promise<Sample> {
  let latencies = new Float64Array(1 << 16);
  let n = 0;
  const t0 = performance.now();
  const deadline = t0 + ms;
  const caller = async (slot: number): Promise<void> => {
    for (let start = performance.now(); start < deadline; start = performance.now()) {
      const status = await once(slot);
      if (status !== 200) throw new Error(`status ${status}`);
      if (n === latencies.length) {
        const grown = new Float64Array(n * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[n++] = performance.now() - start;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, slot) => caller(slot)));
  return summarise(latencies, n, (performance.now() - t0) / 1000);
}

// ── 1. direct ────────────────────────────────────────────────────────────────────────────────────────────────

/** The socket of the direct call: takes the bytes and drops them, completing each write on a later tick. */
class SinkSocket extends Writable {
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 50000;
  override _write(_chunk: unknown, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    callback();
  }
  override _writev(_chunks: unknown[], callback: (error?: Error | null) => void): void {
    callback();
  }
}

function directCaller(listener: Listener): (slot: number) => Promise<number> {
  const sockets = Array.from({ length: CONCURRENCY }, () => new SinkSocket() as unknown as Socket);
  return (slot) => {
    const socket = sockets[slot] as Socket;
    const req = new IncomingMessage(socket);
    req.method = 'GET';
    req.url = '/';
    req.httpVersion = '1.1';
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.headers = { ...HEADERS };
    req.complete = true;
    req.push(null);
    const res = new ServerResponse(req);
    res.assignSocket(socket);
    return new Promise<number>((resolve) => {
      res.once('finish', () => {
        res.detachSocket(socket);
        resolve(res.statusCode);
      });
      listener(req, res);
    });
  };
}

// ── 3. serverless-http: a minimal API Gateway REST API (v1) proxy event, new for each request (it is mutated) ──

function apiGatewayEvent(): Record<string, unknown> {
  return {
    resource: '/',
    path: '/',
    httpMethod: 'GET',
    headers: { Host: 'localhost', 'User-Agent': 'isapi-http-bench', Accept: '*/*' },
    multiValueHeaders: { Host: ['localhost'], 'User-Agent': ['isapi-http-bench'], Accept: ['*/*'] },
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: {
      resourcePath: '/',
      httpMethod: 'GET',
      path: '/prod/',
      stage: 'prod',
      requestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef',
      identity: { sourceIp: '127.0.0.1', userAgent: 'isapi-http-bench' },
    },
    body: null,
    isBase64Encoded: false,
  };
}
const lambdaContext = { functionName: 'bench', awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef' };

// ── the variants ─────────────────────────────────────────────────────────────────────────────────────────────

const apps: Record<AppName, Listener> = { plain: plainListener, express: createExpressApp() };
/** light-my-request gets the same app on a private copy of express (why: privateExpress() in bench/compare/apps.ts). */
const lmrApps: Record<AppName, Listener> = { plain: plainListener, express: createExpressApp(privateExpress()) };
const variants: Variant[] = [];
/** BENCH_ONLY=<regex>: only the paths whose `app/key` matches (e.g. `plain/(inject|light)`); targets then may lack rows. */
const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : null;
const add = (v: Omit<Variant, 'samples'>): void => {
  if (only === null || only.test(`${v.app}/${v.key}`)) variants.push({ ...v, samples: [] });
};
const cleanups: (() => Promise<void> | void)[] = [];

const emulatedHosts: EmulatedHost[] = [];
for (const appName of ['plain', 'express'] as AppName[]) {
  const app = apps[appName];
  const direct = directCaller(app);
  add({ app: appName, group: 'in-process', key: 'direct', label: '1. direct call (minimal req/res)', anchor: true, ours: false, run: (ms) => closedLoop(direct, ms) });
  add({
    app: appName, group: 'in-process', key: 'light-my-request', label: '2. light-my-request inject', anchor: true, ours: false,
    run: (ms) => closedLoop(async () => (await lightMyRequest(lmrApps[appName], { method: 'GET', url: '/', headers: HEADERS })).statusCode, ms),
  });
  const lambda = serverless(app);
  add({
    app: appName, group: 'in-process', key: 'serverless-http', label: '3. serverless-http (API Gateway v1 event)', anchor: true, ours: false,
    run: (ms) => closedLoop(async () => ((await lambda(apiGatewayEvent(), lambdaContext)) as { statusCode: number }).statusCode, ms),
  });
  add({
    app: appName, group: 'in-process', key: 'inject', label: '4. isapi-http inject() on MockEcb', anchor: false, ours: true,
    run: (ms) => closedLoop(async () => (await inject(app, { url: '/', headers: HEADERS })).statusCode, ms),
  });
  const host = new EmulatedHost();
  emulatedHosts.push(host);
  const ext = createExtension(new SimpleHandler(app));
  const proc = ext.nativeEntryPoints().HttpExtensionProc;
  cleanups.push(() => ext.dispose());
  add({
    app: appName, group: 'in-process', key: 'emulated', label: '5. isapi-http EmulatedHost (native, 1 thread)', anchor: false, ours: true,
    run: (ms) => closedLoop(async () => Number.parseInt((await host.execute({ url: '/', headers: HEADERS }, proc)).status ?? '0', 10), ms),
  });
}

// ── 6. the C reference host ─────────────────────────────────────────────────────────────────────────────────

let chost: CHost;
try {
  chost = new CHost(); // compiles host.c with $CC (default cc)
} catch (err) {
  console.error(`bench: cannot build the C reference host: ${(err as Error).message}`);
  process.exit(1);
}
const MAX_HOST_N = 50_000;
const finishBuffer = new SharedArrayBuffer(8 * MAX_HOST_N);
const finishTimes = new BigInt64Array(finishBuffer);
const hostN = new Map<string, number>(); // per variant: requests per sample, calibrated in the warm-up

async function hostSample(ext: IsapiExtension, n: number): Promise<Sample> {
  const models = Array.from({ length: n }, (_, i) => new RequestModel({ url: `/?i=${i}`, headers: HEADERS }));
  finishTimes.fill(0n, 0, n);
  const entries = new Map<bigint, bigint>();
  const proc = (pEcb: bigint): number => {
    entries.set(pEcb, process.hrtime.bigint());
    return ext.HttpExtensionProc(pEcb);
  };
  const results = await chost.executeMany(models, proc, { threads: HOST_THREADS, ioThreads: HOST_THREADS, timeoutMs: 120_000 });
  // 'finish' is emitted around DONE_WITH_SESSION; give a straggler in a worker a moment.
  for (let wait = 0; wait < 100 && finishTimes.subarray(0, n).includes(0n); wait++) await new Promise((r) => setTimeout(r, 10));
  const latencies = new Float64Array(n);
  let first = BigInt(Number.MAX_SAFE_INTEGER) * 1000n;
  let last = 0n;
  results.forEach((r, i) => {
    if (r.status !== '200 OK' || r.doneCount !== 1 || r.body.toString() !== BODY || r.timedOut) throw new Error(`C host request ${i}: ${r.status} done×${r.doneCount} body ${JSON.stringify(r.body.toString())}`);
    const entry = entries.get(r.ecbAddress);
    const done = finishTimes[i] as bigint;
    if (entry === undefined || done === 0n) throw new Error(`C host request ${i}: no entry or finish time`);
    if (entry < first) first = entry;
    if (done > last) last = done;
    latencies[i] = Number(done - entry) / 1e6;
  });
  return summarise(latencies, n, Number(last - first) / 1e9);
}

const pools: ThreadPoolHandler[] = [];
for (const appName of ['plain', 'express'] as AppName[]) {
  const simple = createExtension(new SimpleHandler(timed(apps[appName])));
  const pool = new ThreadPoolHandler(new URL(`./compare/${appName}-app.ts`, import.meta.url), { workers: WORKERS, maxQueue: 1_000_000 });
  pools.push(pool);
  const pooled = createExtension(pool);
  for (const [key, label, ext] of [
    ['c-host-simple', `6. C host ×${HOST_THREADS} threads, SimpleHandler`, simple],
    ['c-host-pool', `6. C host ×${HOST_THREADS} threads, ThreadPool(${WORKERS})`, pooled],
  ] as const) {
    cleanups.push(async () => {
      ext.TerminateExtension(2); // HSE_TERM_MUST_UNLOAD
      await ext.terminated;
      ext.dispose();
    });
    const id = `${appName}/${key}`;
    add({ app: appName, group: 'in-process', key, label, anchor: false, ours: true, run: (ms) => hostSample(ext, hostN.get(id) ?? Math.max(200, Math.round(ms * 10))) });
  }
}
await Promise.all(pools.map((p) => p.ready()));
await shareFinishTimes(finishBuffer, WORKERS * pools.length);

// ── 7. loopback ─────────────────────────────────────────────────────────────────────────────────────────────

const child: ChildProcess = spawn(process.execPath, ['--import', fileURLToPath(new URL('../tools/ts-register.mjs', import.meta.url)), fileURLToPath(new URL('./compare/servers.ts', import.meta.url))], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
const ports = await new Promise<Record<string, number>>((resolve, reject) => {
  let text = '';
  child.stdout?.on('data', (d: Buffer) => {
    text += d.toString();
    const nl = text.indexOf('\n');
    if (nl !== -1) resolve((JSON.parse(text.slice(0, nl)) as { ports: Record<string, number> }).ports);
  });
  child.once('exit', (code) => reject(new Error(`the loopback servers exited (${code})`)));
});

async function loopbackSample(port: number, ms: number): Promise<Sample> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONCURRENCY, pipelining: 1 });
  try {
    const once = async (): Promise<number> => {
      const res = await pool.request({ path: '/', method: 'GET', headers: { 'user-agent': HEADERS['user-agent'], accept: HEADERS.accept } });
      const text = await res.body.text();
      if (text !== BODY) throw new Error(`loopback body ${JSON.stringify(text)}`);
      return res.statusCode;
    };
    await closedLoop(once, 50); // open the connections
    return await closedLoop(once, ms);
  } finally {
    await pool.close();
  }
}
for (const appName of ['plain', 'express'] as AppName[]) {
  for (const [key, label, anchor] of [['node:http', '7. node:http over loopback', true], ['isapi-http', '7. isapi-http createServer over loopback', false]] as const) {
    const port = ports[`${appName}/${key}`] as number;
    add({ app: appName, group: 'loopback', key, label, anchor, ours: !anchor, run: () => loopbackSample(port, LOOPBACK_MS) });
  }
}

// ── check, warm up, measure ─────────────────────────────────────────────────────────────────────────────────

for (const appName of ['plain', 'express'] as AppName[]) {
  // Every in-process path gives the same answer before anything is timed.
  const app = apps[appName];
  const bodies = [
    (await lightMyRequest(lmrApps[appName], { method: 'GET', url: '/', headers: HEADERS })).body,
    JSON.parse(JSON.stringify(await serverless(app)(apiGatewayEvent(), lambdaContext))).body as string,
    (await inject(app, { url: '/', headers: HEADERS })).text(),
  ];
  if (bodies.some((b) => b !== BODY)) throw new Error(`${appName}: the paths disagree: ${JSON.stringify(bodies)}`);
}

/**
 * CPU time used by other processes, in cores, over a stretch of the run: the machine's busy time (/proc/stat, with
 * steal) minus this process (all its threads) and the loopback servers' process. Linux only; NaN elsewhere.
 */
function cpuMeter(): () => number {
  const jiffies = (file: string, fields: number[]): number => {
    try {
      const text = fs.readFileSync(file, 'latin1');
      const parts = (file === '/proc/stat' ? (text.split('\n')[0] as string) : text.slice(text.lastIndexOf(')') + 2)).trim().split(/\s+/);
      return fields.reduce((sum, i) => sum + Number(parts[i]), 0);
    } catch {
      return NaN;
    }
  };
  // /proc/stat cpu line: user nice system idle iowait irq softirq steal; /proc/<pid>/stat after ')': utime at 11, stime at 12.
  const machine = (): number => jiffies('/proc/stat', [1, 2, 3, 6, 7, 8]);
  const server = (): number => jiffies(`/proc/${child.pid}/stat`, [11, 12]);
  const [m0, s0, own0, w0] = [machine(), server(), process.cpuUsage(), performance.now()];
  return () => {
    const own = process.cpuUsage(own0);
    const ms = (machine() - m0 - (server() - s0)) * 10 - (own.user + own.system) / 1000; // USER_HZ = 100
    return ms / (performance.now() - w0);
  };
}

const loadStart = os.loadavg();
const t0 = Date.now();
const othersRounds: number[] = [];
const othersRun = cpuMeter();
process.stderr.write(`warm-up (${variants.length} paths)…\n`);
// Until TurboFan has optimised the long ISAPI path, the first few thousand requests run several times slower: warm
// every path for WARM_REQUESTS requests (at least two passes, at most WARM_MAX_MS), so rounds time optimised code.
const WARM_REQUESTS = Number(process.env.BENCH_WARM_REQUESTS) || 20_000;
const WARM_MAX_MS = 6000;
for (const v of variants) {
  const begin = performance.now();
  let served = 0;
  for (let pass = 0; pass < 2 || (served < WARM_REQUESTS && performance.now() - begin < WARM_MAX_MS); pass++) {
    const s = await v.run(v.group === 'loopback' ? 300 : 250);
    served += s.n;
    if (v.key.startsWith('c-host')) hostN.set(`${v.app}/${v.key}`, Math.min(MAX_HOST_N, Math.max(500, Math.round((s.reqps * ROUND_MS) / 1000))));
  }
}
for (let round = 0; round < ROUNDS; round++) {
  const order = variants.map((_, i) => variants[(i + round * 5) % variants.length] as Variant);
  const others = cpuMeter();
  for (const v of order) v.samples.push(await v.run(ROUND_MS));
  othersRounds.push(others());
  process.stderr.write(`round ${round + 1}/${ROUNDS} done (${((Date.now() - t0) / 1000).toFixed(0)} s, load ${os.loadavg()[0]?.toFixed(2)}, other processes ${othersRounds.at(-1)?.toFixed(2)} cores)\n`);
}
const othersCores = othersRun();
const loadEnd = os.loadavg();

// ── report ──────────────────────────────────────────────────────────────────────────────────────────────────

interface Row {
  app: AppName; group: Group; key: string; label: string; anchor: boolean; ours: boolean;
  reqps: number; reqpsMin: number; reqpsMax: number; p50: number; p99: number; n: number;
  /** Median over rounds of this row's req/s ÷ the best anchor's req/s in the same round. */
  ratio: number; ratioMin: number; ratioMax: number;
  /** Median over rounds of this row's p99 ÷ the best (lowest-p99) anchor's p99 in the same round. */
  p99Ratio: number;
  samples: Sample[];
}
const rows: Row[] = [];
const bestAnchor: Record<string, { reqps: Variant; p99: Variant }> = {};
for (const appName of ['plain', 'express'] as AppName[]) {
  for (const group of ['in-process', 'loopback'] as Group[]) {
    const anchors = variants.filter((v) => v.app === appName && v.group === group && v.anchor);
    if (anchors.length === 0) continue;
    const byReqps = [...anchors].sort((a, b) => median(b.samples.map((s) => s.reqps)) - median(a.samples.map((s) => s.reqps)))[0] as Variant;
    const byP99 = [...anchors].sort((a, b) => median(a.samples.map((s) => s.p99)) - median(b.samples.map((s) => s.p99)))[0] as Variant;
    bestAnchor[`${appName}/${group}`] = { reqps: byReqps, p99: byP99 };
    for (const v of variants.filter((x) => x.app === appName && x.group === group)) {
      const ratios = v.samples.map((s, r) => s.reqps / (byReqps.samples[r] as Sample).reqps);
      const p99Ratios = v.samples.map((s, r) => s.p99 / (byP99.samples[r] as Sample).p99);
      rows.push({
        app: appName, group, key: v.key, label: v.label, anchor: v.anchor, ours: v.ours,
        reqps: median(v.samples.map((s) => s.reqps)), reqpsMin: Math.min(...v.samples.map((s) => s.reqps)), reqpsMax: Math.max(...v.samples.map((s) => s.reqps)),
        p50: median(v.samples.map((s) => s.p50)), p99: median(v.samples.map((s) => s.p99)), n: median(v.samples.map((s) => s.n)),
        ratio: median(ratios), ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios), p99Ratio: median(p99Ratios), samples: v.samples,
      });
    }
  }
}

/** Median over rounds of a ÷ b, paired by round. */
const pairRatio = (app: AppName, a: string, b: string): { ratio: number; ratios: number[] } | null => {
  const va = variants.find((v) => v.app === app && v.key === a);
  const vb = variants.find((v) => v.app === app && v.key === b);
  if (!va || !vb) return null;
  const ratios = va.samples.map((s, r) => s.reqps / (vb.samples[r] as Sample).reqps);
  return { ratio: median(ratios), ratios };
};
interface Target { what: string; ratio: number; ratios: number[]; target: number; pass: boolean }
const targets: Target[] = [];
const target = (what: string, r: { ratio: number; ratios: number[] } | null, min: number): void => {
  if (r !== null) targets.push({ what, ...r, target: min, pass: r.ratio >= min });
};
target('plain: inject() req/s ≥ 1.5 × light-my-request', pairRatio('plain', 'inject', 'light-my-request'), 1.5);
target('plain: inject() req/s ≥ 1.0 × serverless-http', pairRatio('plain', 'inject', 'serverless-http'), 1.0);
target('plain: EmulatedHost (native) req/s ≥ 0.8 × inject() on MockEcb', pairRatio('plain', 'emulated', 'inject'), 0.8);
for (const row of rows.filter((r) => r.app === 'express' && r.group === 'in-process' && r.ours && bestAnchor['express/in-process'])) {
  const best = bestAnchor['express/in-process']?.reqps as Variant;
  target(`express: ${row.label.replace(/^\d\. /, '')} req/s ≥ 0.9 × best anchor (${best.label.replace(/^\d\. /, '')})`, { ratio: row.ratio, ratios: row.samples.map((s, r) => s.reqps / (best.samples[r] as Sample).reqps) }, 0.9);
}

const cpu = os.cpus()[0]?.model ?? 'unknown';
const f = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
console.log(`npm run bench — node ${process.version}, ${cpu} ×${os.cpus().length}, ${new Date().toISOString()}`);
console.log(`${ROUNDS} rounds in rotating order; ${ROUND_MS} ms per in-process sample, ${LOOPBACK_MS} ms per loopback sample; ${CONCURRENCY} requests in flight (loopback: ${CONCURRENCY} connections); C host: ${HOST_THREADS} host threads, ${WORKERS} pool workers`);
console.log(`load average at start ${loadStart.map((x) => x.toFixed(2)).join(' ')}, at end ${loadEnd.map((x) => x.toFixed(2)).join(' ')}; ` +
  `other processes used ${othersCores.toFixed(2)} of ${os.cpus().length} cores during the rounds (per round ${Math.min(...othersRounds).toFixed(2)}–${Math.max(...othersRounds).toFixed(2)})`);
const head = ['path', 'req/s', 'req/s range', '× best', '× range', 'p50 ms', 'p99 ms', 'p99 × best'];
for (const appName of ['plain', 'express'] as AppName[]) {
  for (const group of ['in-process', 'loopback'] as Group[]) {
    const best = bestAnchor[`${appName}/${group}`];
    if (!best) continue;
    console.log(`\n${appName === 'plain' ? 'plain listener' : 'Express 5'}, ${group}: ratios to ${best.reqps.label.replace(/^\d\. /, '')} (req/s) and ${best.p99.label.replace(/^\d\. /, '')} (p99)${group === 'in-process' ? '; * = anchor' : ''}`);
    const lines = rows
      .filter((r) => r.app === appName && r.group === group)
      .map((r) => [
        `${r.label}${r.anchor && group === 'in-process' ? ' *' : ''}`, r.reqps.toFixed(0), `${r.reqpsMin.toFixed(0)}–${r.reqpsMax.toFixed(0)}`, `${r.ratio.toFixed(2)}×`,
        `${r.ratioMin.toFixed(2)}–${r.ratioMax.toFixed(2)}`, f(r.p50), f(r.p99), `${r.p99Ratio.toFixed(2)}×`,
      ]);
    const widths = head.map((h, c) => Math.max(h.length, ...lines.map((l) => (l[c] as string).length)));
    for (const l of [head, widths.map((w) => '-'.repeat(w)), ...lines]) console.log(l.map((x, c) => (c === 0 ? x.padEnd(widths[c] as number) : x.padStart(widths[c] as number))).join('  '));
  }
}
console.log('\ntargets (median of per-round ratios; rounds in brackets)');
for (const t of targets) console.log(`  ${t.pass ? 'PASS' : 'MISS'}  ${t.what}: ${t.ratio.toFixed(2)}× [${t.ratios.map((r) => r.toFixed(2)).join(' ')}]`);

const outDir = new URL('./results/', import.meta.url);
fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(
  new URL('bench.json', outDir),
  `${JSON.stringify(
    {
      node: process.version, v8: process.versions.v8, cpu, cpus: os.cpus().length, arch: process.arch, date: new Date().toISOString(), loadavgStart: loadStart, loadavgEnd: loadEnd, otherProcessesCores: othersCores, otherProcessesCoresPerRound: othersRounds,
      config: { rounds: ROUNDS, roundMs: ROUND_MS, loopbackMs: LOOPBACK_MS, concurrency: CONCURRENCY, hostThreads: HOST_THREADS, workers: WORKERS, hostN: Object.fromEntries(hostN) },
      rows, targets,
    },
    null,
    2,
  )}\n`,
);
console.log(`\n${targets.filter((t) => !t.pass).length} MISS of ${targets.length}; written to bench/results/bench.json`);

child.stdin?.end();
for (const host of emulatedHosts) host.close();
for (const cleanup of cleanups) await cleanup();
await chost.close();
