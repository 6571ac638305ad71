/**
 * npm run bench:ecb — NativeEcb's per-call overhead over the bare koffi calls it wraps (koffi.md Experiment 4).
 *
 * The ECB is a real one from the C reference host (test/native/host.c): its callbacks are C, so the host's own cost
 * is small and the wrapper's cost shows. host_run is called synchronously with threads = 0, so the host calls our
 * proc on this (main) thread with no cross-thread relay, and every measurement loop runs inside that one proc call.
 * Each row pairs a NativeEcb call with a "direct" baseline that does the same native work and returns the same value
 * (checked before timing) with nothing else: decoded fn pointers, a preallocated Buffer + Uint32Array, no checks.
 *
 * Method: warm-up (lets TurboFan optimise every loop), calibrate n so one sample takes ~ROUND_MS, then ROUNDS rounds
 * in which the two sides of a row run back to back, in alternating order, so drift cancels in the per-round ratio.
 * Reported: median ns/op per side and the median of the per-round ratios NativeEcb/direct (and their min–max).
 * Each loop is its own function literal so that its call site stays monomorphic and inlinable (a shared
 * `for (...) op()` helper would be megamorphic and add the same constant to both sides, hiding the difference).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { getAbi } from '../src/ecb/abi.js';
import { NativeEcb } from '../src/ecb/native-ecb.js';
import { loadCHost, type HostApi } from '../test/native/c-host.js';

const TARGET = 1.25;
const ROUNDS = Number(process.env.BENCH_ROUNDS) || 9;
const ROUND_MS = Number(process.env.BENCH_ROUND_MS) || 40;
const HSE_STATUS_SUCCESS = 1;
const HSE_STATUS_ERROR = 4;

type Loop = (n: number) => number;
interface Row { name: string; direct: Loop; native: Loop; note?: string }
type GsvFn = (conn: bigint, name: string, buf: Buffer, size: Uint32Array) => number;
type WcFn = (conn: bigint, buf: Buffer, size: Uint32Array, flags: number) => number;

let api: HostApi;
try {
  api = loadCHost(); // compiles host.c with $CC (default cc); its error names the missing compiler
} catch (err) {
  console.error(`bench:ecb: cannot build the C reference host: ${(err as Error).message}`);
  process.exit(1);
}
const k = api.koffi;
const off = getAbi().offsets.EXTENSION_CONTROL_BLOCK;
const protos = getAbi().protos;
let writes = 0; // WriteClient calls made, to check the host received exactly 4 × writes bytes

/** The rows, built over one live ECB. Both sides of a row must return the same value for the same input. */
function makeRows(pEcb: bigint): Row[] {
  const ecb = new NativeEcb(pEcb);
  const ptrAt = (o: number): bigint => k.decode(pEcb, o, 'void *') as bigint;
  const conn = ptrAt(off.ConnID);
  const gsv = k.decode(ptrAt(off.GetServerVariable), protos.GetServerVariable) as GsvFn;
  const wc = k.decode(ptrAt(off.WriteClient), protos.WriteClient) as WcFn;
  const scratch = Buffer.alloc(1024);
  const size = new Uint32Array(1);
  const data = Buffer.from('ping');
  // Field baseline: `ptr + off` per read (one BigInt add), the offset already a BigInt constant.
  const totalOff = BigInt(off.cbTotalBytes);
  const availOff = BigInt(off.cbAvailable);
  // Baselines: the same native calls, minus the wrapper's bookkeeping.
  const str = (name: string): string | null => {
    size[0] = scratch.length;
    return gsv(conn, name, scratch, size) !== 0 ? scratch.toString('latin1', 0, (size[0] as number) - 1) : null;
  };
  const buf = (name: string): Buffer | null => {
    size[0] = scratch.length;
    return gsv(conn, name, scratch, size) !== 0 ? Buffer.from(scratch.subarray(0, (size[0] as number) - 1)) : null;
  };
  const write = (): number => {
    size[0] = data.length;
    if (wc(conn, data, size, 0) === 0) throw new Error('WriteClient failed');
    return size[0] as number;
  };
  const ansi = (o: number): string => {
    const bytes = k.decode(k.decode(pEcb, o, 'void *'), 'uint8_t', -1) as Uint8Array;
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  };
  const pairs: [string, unknown, unknown][] = [
    ['SERVER_PORT', str('SERVER_PORT'), ecb.getServerVariableString('SERVER_PORT')],
    ['HTTP_X_REQ_ID', str('HTTP_X_REQ_ID'), ecb.getServerVariableString('HTTP_X_REQ_ID')],
    ['HTTP_X_REQ_ID buffer', buf('HTTP_X_REQ_ID')?.toString('hex'), ecb.getServerVariable('HTTP_X_REQ_ID')?.toString('hex')],
    ['WriteClient', write(), ecb.writeClient(data)],
    ['totalBytes', k.decode.uint32(pEcb + totalOff), ecb.totalBytes],
    ['availableBytes', k.decode.uint32(pEcb + availOff), ecb.availableBytes],
    ['method', ansi(off.lpszMethod), ecb.method],
    ['queryString', ansi(off.lpszQueryString), ecb.queryString],
  ];
  writes += 2;
  for (const [what, a, b] of pairs) if (a !== b || a == null) throw new Error(`baseline mismatch for ${what}: ${String(a)} vs ${String(b)}`);
  return [
    { name: 'getServerVariableString(SERVER_PORT)',
      direct: (n) => { let s = 0; for (let i = 0; i < n; i++) s += (str('SERVER_PORT') as string).length; return s; },
      native: (n) => { let s = 0; for (let i = 0; i < n; i++) s += (ecb.getServerVariableString('SERVER_PORT') as string).length; return s; } },
    { name: 'getServerVariableString(HTTP_X_REQ_ID)',
      direct: (n) => { let s = 0; for (let i = 0; i < n; i++) s += (str('HTTP_X_REQ_ID') as string).length; return s; },
      native: (n) => { let s = 0; for (let i = 0; i < n; i++) s += (ecb.getServerVariableString('HTTP_X_REQ_ID') as string).length; return s; } },
    { name: 'getServerVariable(HTTP_X_REQ_ID) Buffer',
      direct: (n) => { let s = 0; for (let i = 0; i < n; i++) s += (buf('HTTP_X_REQ_ID') as Buffer).length; return s; },
      native: (n) => { let s = 0; for (let i = 0; i < n; i++) s += (ecb.getServerVariable('HTTP_X_REQ_ID') as Buffer).length; return s; } },
    { name: 'writeClient(4 bytes, sync)',
      direct: (n) => { let s = 0; for (let i = 0; i < n; i++) s += write(); writes += n; return s; },
      native: (n) => { let s = 0; for (let i = 0; i < n; i++) s += ecb.writeClient(data); writes += n; return s; } },
    { name: 'totalBytes',
      direct: (n) => { let s = 0; for (let i = 0; i < n; i++) s += k.decode.uint32(pEcb + totalOff); return s; },
      native: (n) => { let s = 0; for (let i = 0; i < n; i++) s += ecb.totalBytes; return s; } },
    { name: 'availableBytes',
      direct: (n) => { let s = 0; for (let i = 0; i < n; i++) s += k.decode.uint32(pEcb + availOff); return s; },
      native: (n) => { let s = 0; for (let i = 0; i < n; i++) s += ecb.availableBytes; return s; } },
    { name: 'method', note: 'NativeEcb caches it',
      direct: (n) => { let s = 0; for (let i = 0; i < n; i++) s += ansi(off.lpszMethod).length; return s; },
      native: (n) => { let s = 0; for (let i = 0; i < n; i++) s += ecb.method.length; return s; } },
    { name: 'queryString',
      direct: (n) => { let s = 0; for (let i = 0; i < n; i++) s += ansi(off.lpszQueryString).length; return s; },
      native: (n) => { let s = 0; for (let i = 0; i < n; i++) s += ecb.queryString.length; return s; } },
  ];
}

let sink = 0; // every loop's result is summed here (and reported) so V8 cannot drop the work
function sample(loop: Loop, n: number): number {
  globalThis.gc?.(); // start every sample from a clean young generation (npm script passes --expose-gc)
  const t0 = process.hrtime.bigint();
  sink += loop(n);
  return Number(process.hrtime.bigint() - t0) / n;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;

interface Result { name: string; note?: string; n: number; directNs: number; nativeNs: number; ratio: number; ratioMin: number; ratioMax: number; pass: boolean; directRounds: number[]; nativeRounds: number[] }

function measure(pEcb: bigint): Result[] {
  const rows = makeRows(pEcb);
  for (const row of rows) for (let w = 0; w < 30; w++) sink += row.direct(2000) + row.native(2000); // warm-up
  const sizes = rows.map((row) => Math.max(1000, Math.round((ROUND_MS * 1e6) / Math.max(sample(row.direct, 20000), sample(row.native, 20000)))));
  const per = rows.map(() => ({ d: [] as number[], v: [] as number[], r: [] as number[] }));
  for (let round = 0; round < ROUNDS; round++) {
    rows.forEach((row, i) => {
      const n = sizes[i] as number;
      // Alternate which side goes first, so a slow-down that spans a pair hits each side equally often.
      const v = round % 2 ? sample(row.native, n) : NaN;
      const d = sample(row.direct, n);
      const v2 = round % 2 ? v : sample(row.native, n);
      const p = per[i] as (typeof per)[number];
      p.d.push(d); p.v.push(v2); p.r.push(v2 / d);
    });
  }
  return rows.map((row, i) => {
    const p = per[i] as (typeof per)[number];
    const ratio = median(p.r);
    return { name: row.name, note: row.note, n: sizes[i] as number, directNs: median(p.d), nativeNs: median(p.v), ratio, ratioMin: Math.min(...p.r), ratioMax: Math.max(...p.r), pass: ratio <= TARGET, directRounds: p.d, nativeRounds: p.v };
  });
}

// One request on the C host: a POST with a small body, a query string and two short server variables.
const req = api.request_new();
if (req === null) throw new Error('host_request_new: out of memory');
const setField = (which: number, text: string): void => void api.request_set_field(req, which, Buffer.from(text, 'latin1'), text.length);
setField(0, 'POST'); // METHOD
setField(1, 'id=42&q=abc'); // QUERY
for (const [name, value] of [['SERVER_PORT', '8080'], ['HTTP_X_REQ_ID', '7f3a9c1e']] as const) api.request_add_var(req, name, Buffer.from(value, 'latin1'), value.length, 0);
const body = Buffer.from('{"hello":"world"}');
api.request_set_body(req, body, body.length, body.length, body.length);
api.request_set_options(req, 0, 0, 30000, -1);

let results: Result[] = [];
let procError: unknown = null;
const proc = (pEcb: bigint): number => {
  try { // an exception escaping a koffi callback would disable it (koffi.md pitfall 6): carry it out instead
    results = measure(pEcb);
    return HSE_STATUS_SUCCESS;
  } catch (err) {
    procError = err;
    return HSE_STATUS_ERROR;
  }
};
const procPtr = k.register(proc, k.pointer(api.procType));
try {
  // Synchronous host_run, threads = 0: the host calls the proc right here, on the main thread.
  if (api.run(procPtr, new BigUint64Array([req]), 1, 0, 1) !== 0) throw new Error('host_run timed out or refused the request');
  if (procError) throw procError;
  const bodyLen = new Uint32Array(1);
  api.result_bytes(req, 2, bodyLen); // BODY
  const procResult = Number(api.result_int(req, 4)); // PROC_RESULT
  const useAfterDone = Number(api.result_int(req, 7));
  if (procResult !== HSE_STATUS_SUCCESS || bodyLen[0] !== 4 * writes || useAfterDone !== 0) {
    throw new Error(`host disagrees: proc=${procResult} body=${bodyLen[0]}B (expected ${4 * writes}) useAfterDone=${useAfterDone}`);
  }
} finally {
  k.unregister(procPtr);
  api.request_free(req);
}

const cpu = os.cpus()[0]?.model ?? 'unknown';
console.log(`NativeEcb vs direct koffi — node ${process.version}, ${cpu} ×${os.cpus().length}, ${ROUNDS} rounds, ~${ROUND_MS} ms/sample`);
const head = ['operation', 'direct ns/op', 'NativeEcb ns/op', 'ratio', 'ratio range', 'target', ''];
const lines = results.map((r) => [
  r.name + (r.note ? ` (${r.note})` : ''), r.directNs.toFixed(1), r.nativeNs.toFixed(1), `${r.ratio.toFixed(2)}×`,
  `${r.ratioMin.toFixed(2)}–${r.ratioMax.toFixed(2)}`, `≤ ${TARGET}×`, r.pass ? 'PASS' : 'MISS',
]);
const widths = head.map((h, c) => Math.max(h.length, ...lines.map((l) => (l[c] as string).length)));
for (const l of [head, widths.map((w) => '-'.repeat(w)), ...lines]) console.log(l.map((x, c) => (c === 0 ? x.padEnd(widths[c] as number) : x.padStart(widths[c] as number))).join('  '));

const outDir = new URL('./results/', import.meta.url);
fs.mkdirSync(outDir, { recursive: true });
const report = { node: process.version, v8: process.versions.v8, cpu, cpus: os.cpus().length, arch: process.arch, date: new Date().toISOString(), koffi: (k as { version?: string }).version, rounds: ROUNDS, roundMs: ROUND_MS, target: TARGET, checksum: sink, rows: results };
fs.writeFileSync(new URL('ecb.json', outDir), `${JSON.stringify(report, null, 2)}\n`);
console.log(`\n${results.filter((r) => !r.pass).length} MISS of ${results.length}; written to bench/results/ecb.json`);
