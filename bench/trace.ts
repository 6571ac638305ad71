/**
 * npm run bench:trace — what a stalled trace collector costs the requests (issue 7 item 1: "the channel never
 * blocks or slows request handling").
 *
 * Requests go through the C reference host (test/native/host.c): its own threads call HttpExtensionProc, as IIS's
 * would, and koffi relays each call to this thread, where SimpleHandler serves it. The app prints one console line
 * per request, captured into the channel, and the handler adds the request's summary record: two records a request.
 *
 * Three conditions, measured in the same run, round after round, in rotating order so drift hits each alike:
 * - `no collector`: the extension traces to channel A, which nobody is connected to;
 * - `stalled collector`: the extension traces to channel B, to which a separate process is connected that never
 *   reads. Before timing, B is written to until that collector's backlog is full and records are being dropped,
 *   so what is timed is the steady state of a stalled collector, not the first megabyte;
 * - `no trace` (for reference): an extension without a trace, and an app that prints nothing.
 * Reported: the median req/s of each condition and the median of the per-round ratios stalled / no collector
 * (target ≥ 0.90: a stalled collector costs less than 10%), plus traced / untraced for reference.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RequestModel } from '../src/ecb/request-model.js';
import { createExtension, type IsapiExtension } from '../src/handlers/create-extension.js';
import { SimpleHandler } from '../src/handlers/simple-handler.js';
import { createTraceChannel, type TraceChannel } from '../src/trace/channel.js';
import { CHost } from '../test/native/c-host.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS) || 12;
const REQUESTS = Number(process.env.BENCH_REQUESTS) || 1500;
const THREADS = Number(process.env.BENCH_THREADS) || 4;
const TARGET = 0.9;

const app = (req: IncomingMessage, res: ServerResponse): void => {
  console.log(`serving ${req.method} ${req.url}`);
  res.end('ok');
};
/** The reference condition's app: the same, minus the line (without a capture it would go to this terminal). */
const quietApp = (_req: IncomingMessage, res: ServerResponse): void => {
  res.end('ok');
};

let host: CHost;
try {
  host = new CHost(); // compiles host.c with $CC (default cc); its error names the missing compiler
} catch (err) {
  console.error(`bench:trace: cannot build the C reference host: ${(err as Error).message}`);
  process.exit(1);
}

const channelA = createTraceChannel({ name: `bench-a-${process.pid}` });
const channelB = createTraceChannel({ name: `bench-b-${process.pid}` });
await Promise.all([channelA.ready, channelB.ready]);

/** A separate process that connects to channel B and never reads a byte. */
const stalled = spawn(
  process.execPath,
  ['-e', `const s = require('net').connect(${JSON.stringify(channelB.path)}, () => process.stdout.write('connected\\n')); s.pause(); process.stdin.resume(); process.stdin.on('end', () => process.exit(0));`],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
await new Promise<void>((resolve, reject) => {
  stalled.stdout?.on('data', (d: Buffer) => d.toString().includes('connected') && resolve());
  stalled.once('exit', (code) => reject(new Error(`the stalled collector exited (${code})`)));
});
while (channelB.stats().collectors < 1) await new Promise((r) => setTimeout(r, 5));
// Fill its backlog (kernel buffers, then the channel's 1 MiB allowance) until records are being dropped.
const filler = 'f'.repeat(200);
for (let i = 0; channelB.stats().dropped < 1000; i++) {
  channelB.info(`prefill ${i} ${filler}`);
  if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
}

interface Condition {
  readonly name: string;
  readonly ext: IsapiExtension;
  readonly channel: TraceChannel | null;
  readonly samples: number[];
}
const conditions: Condition[] = [
  { name: 'no collector', ext: createExtension(new SimpleHandler(app, { trace: channelA })), channel: channelA, samples: [] },
  { name: 'stalled collector', ext: createExtension(new SimpleHandler(app, { trace: channelB })), channel: channelB, samples: [] },
  { name: 'no trace', ext: createExtension(new SimpleHandler(quietApp)), channel: null, samples: [] },
];
const models = Array.from({ length: REQUESTS }, (_, i) => new RequestModel({ url: `/item/${i}?q=${i % 7}` }));

async function sample(c: Condition): Promise<number> {
  globalThis.gc?.();
  c.channel?.capture();
  const t0 = process.hrtime.bigint();
  let results;
  try {
    results = await host.executeMany(models, c.ext.nativeEntryPoints().HttpExtensionProc, { threads: THREADS, timeoutMs: 60_000 });
  } finally {
    c.channel?.release();
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const bad = results.filter((r) => r.status !== '200 OK' || r.doneCount !== 1).length;
  if (bad > 0) throw new Error(`${bad} requests did not end with one 200 under "${c.name}"`);
  return REQUESTS / seconds;
}

const droppedBefore = channelB.stats().dropped;
for (let w = 0; w < 2; w++) for (const c of conditions) await sample(c); // warm-up: JIT, host threads, buffers
const ratios: number[] = [];
const tracedRatios: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const order = conditions.map((_, i) => conditions[(i + round) % conditions.length] as Condition);
  const got = new Map<Condition, number>();
  for (const c of order) got.set(c, await sample(c));
  for (const [c, v] of got) c.samples.push(v);
  const [none, stalledC, plain] = conditions as [Condition, Condition, Condition];
  ratios.push((got.get(stalledC) as number) / (got.get(none) as number));
  tracedRatios.push((got.get(none) as number) / (got.get(plain) as number));
  process.stderr.write(`round ${round + 1}/${ROUNDS}: ${order.map((c) => `${c.name} ${Math.round(got.get(c) as number)}`).join(', ')} req/s\n`);
}

// The same question one level down, where a busy machine blurs it less: the cost of one channel.write, in a tight
// loop, to the channel nobody reads from and to the one with the stalled collector (its records all dropped now).
const record = { time: Date.now(), level: 'info' as const, msg: 'serving GET /item/42?q=0', source: 'console' as const, requestId: '42', worker: 0 };
const writeNs: Record<'no collector' | 'stalled collector', number[]> = { 'no collector': [], 'stalled collector': [] };
for (let round = 0; round < 2 * ROUNDS; round++) {
  for (const [name, channel] of [['no collector', channelA], ['stalled collector', channelB]] as const) {
    const n = 50_000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) channel.write({ ...record, time: i });
    if (round >= 2) writeNs[name].push(Number(process.hrtime.bigint() - t0) / n);
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const statsB = channelB.stats();
const ratio = median(ratios);
const tracedRatio = median(tracedRatios);
const cpu = os.cpus()[0]?.model ?? 'unknown';

console.log(`trace channel: request throughput with a stalled collector — node ${process.version}, ${cpu} ×${os.cpus().length}, load ${os.loadavg()[0]?.toFixed(1)}`);
console.log(`C reference host, ${THREADS} host threads, SimpleHandler, ${REQUESTS} requests per sample, ${ROUNDS} rounds, 2 records per request\n`);
const rows = conditions.map((c) => [c.name, Math.round(median(c.samples)).toString(), `${Math.round(Math.min(...c.samples))}–${Math.round(Math.max(...c.samples))}`]);
const head = ['condition', 'median req/s', 'range'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
for (const r of [head, widths.map((w) => '-'.repeat(w)), ...rows]) console.log(r.map((x, i) => (i === 0 ? x.padEnd(widths[i] as number) : x.padStart(widths[i] as number))).join('  '));
console.log(
  `\nstalled / no collector: ${ratio.toFixed(3)} (median of per-round ratios, range ${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)}); ` +
    `cost ${((1 - ratio) * 100).toFixed(1)}%, target < 10%: ${ratio >= TARGET ? 'PASS' : 'MISS'}`,
);
console.log(`no collector / no trace (reference: the whole trace, capture and records included): ${tracedRatio.toFixed(3)}`);
console.log(
  `channel.write: ${median(writeNs['no collector']).toFixed(0)} ns/record with no collector, ${median(writeNs['stalled collector']).toFixed(0)} ns/record with the stalled one (medians of ${writeNs['no collector'].length} loops of 50000)`,
);
console.log(`the stalled collector: ${statsB.dropped - droppedBefore} records dropped during the run (${statsB.dropped} in all), backlog bounded; channel A: ${channelA.stats().records} records, 0 collectors`);

const outDir = new URL('./results/', import.meta.url);
fs.mkdirSync(outDir, { recursive: true });
const report = {
  node: process.version,
  cpu,
  cpus: os.cpus().length,
  loadavg: os.loadavg(),
  date: new Date().toISOString(),
  rounds: ROUNDS,
  requestsPerSample: REQUESTS,
  hostThreads: THREADS,
  target: TARGET,
  ratio,
  ratios,
  tracedRatio,
  conditions: conditions.map((c) => ({ name: c.name, medianReqPerSec: median(c.samples), samples: c.samples })),
  droppedForStalledCollector: statsB.dropped - droppedBefore,
  writeNsPerRecord: { noCollector: median(writeNs['no collector']), stalledCollector: median(writeNs['stalled collector']) },
  pass: ratio >= TARGET,
};
fs.writeFileSync(new URL('trace.json', outDir), `${JSON.stringify(report, null, 2)}\n`);
console.log('written to bench/results/trace.json');

stalled.stdin?.end();
for (const c of conditions) c.ext.dispose();
await host.close();
await Promise.all([channelA.close(), channelB.close()]);
