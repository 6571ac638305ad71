/**
 * Driver for the C reference host (test/native/host.c): compiles it with the system C compiler, loads it with
 * koffi, turns RequestModels into native ECBs and runs an HttpExtensionProc against them from the host's own
 * threads, exactly as IIS's thread pool would. Results come back in the RecordedResponse shape shared with
 * MockEcb and EmulatedHost, plus the host's rule-violation counters.
 *
 *   const host = new CHost();
 *   const res = await host.execute(new RequestModel({ method: 'POST', url: '/x', body }), (pEcb) => proc(pEcb));
 *   await host.close();                 // unregisters the proc trampoline, frees the native requests
 *
 * The loader contract (docs/native-host.md): every CHost owns a gate (host.c "THE LOADER CONTRACT") through which
 * each call into JS passes: an accepting flag, an in-flight counter and a cap of `maxJsCalls` concurrent calls
 * (a semaphore: excess host threads wait instead of overflowing koffi's max_async_calls). The IIS-like lifecycle:
 *
 *   const host = new CHost({ requireStart: true, maxJsCalls: 16 });   // requests get a native 503 until start()
 *   const points = ext.nativeEntryPoints();
 *   await host.start(points.GetExtensionVersion);                     // from a host thread, never the JS thread
 *   const run = host.executeMany(models, points.HttpExtensionProc, { threads: 32, intervalUs: 2000 });
 *   const t = await host.terminate(points.TerminateExtension, { flags: 2, timeoutMs: 10_000 });
 *   // t: drained, terminateCalled, terminateResult, ...; host.stats(): calls, peak, refusals, trip-wires
 *
 * Threading: host_run blocks, so it is called through koffi's `.async()` (on a libuv pool thread); the JS thread
 * stays free to run the proc, which koffi relays from the host threads (koffi.md 3c). The pending `.async()`
 * call holds the event loop open by itself (checked: a run that waits 700 ms for a timeout keeps a timer-less
 * Node alive until it returns). Each run occupies one libuv pool thread for its whole duration, so at most
 * `UV_THREADPOOL_SIZE - 2` runs (default 2) go at once and the rest queue: a proc that uses fs or dns must
 * always find a free pool thread, or the run would wait for itself until its timeout.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getKoffi } from '../../src/ecb/koffi.js';
import { RequestModel, toAnsi } from '../../src/ecb/request-model.js';
import type { RecordedResponse } from '../../src/ecb/recorded-response.js';

type Koffi = ReturnType<typeof getKoffi>;
export type KoffiType = ReturnType<Koffi['proto']>;
/* koffi's own typings describe a decoded function as `any`-typed; these are the shapes we call. */
type Fn<A extends unknown[], R> = ((...args: A) => R) & { async: (...args: unknown[]) => void };

const HERE = typeof __dirname === 'string' ? __dirname : path.join(process.cwd(), 'test', 'native');
export const HOST_SOURCE = path.join(HERE, 'host.c');
export const BUILD_DIR = path.join(HERE, 'build');
/** Compiler flags: the brief's set, plus self-pinning so koffi can never unload the library under host threads. */
export const HOST_CFLAGS: readonly string[] = ['-O2', '-shared', '-fPIC', '-pthread', '-std=gnu11', '-Wall', '-Wextra', '-Werror', '-DPIN_SELF'];
const HOST_LDFLAGS: readonly string[] = process.platform === 'linux' ? ['-Wl,-z,nodelete', '-ldl'] : [];
const LIB_EXT = process.platform === 'win32' ? '.dll' : process.platform === 'darwin' ? '.dylib' : '.so';

const HSE_STATUS_ERROR = 4;
const HSE_TERM_MUST_UNLOAD = 2;
/** The gate's cap when none is given: IIS-like thread counts (8 to 64) pass, far below max_async_calls. */
export const DEFAULT_MAX_JS_CALLS = 64;

/**
 * Compile host.c with `cc` (a command, optionally with leading arguments, as $CC may be) into
 * `outDir/libisapihost-<hash>.so`, unless that file already exists. The hash covers the source, the compiler and
 * the flags, so a changed source rebuilds and concurrent jest workers never see a half-written file (each
 * compiles to a temporary name and renames it into place).
 */
export function compileHost(cc: string, outDir: string): string {
  const source = fs.readFileSync(HOST_SOURCE);
  const argv = cc.trim().split(/\s+/).filter((s) => s.length > 0);
  const command = argv[0];
  if (command === undefined) throw new Error('the C reference host needs a C compiler: the compiler command is empty; set CC or install gcc (apt-get install gcc)');
  const flags = [...HOST_CFLAGS, ...HOST_LDFLAGS];
  const hash = createHash('sha256').update(source).update(`\0${argv.join(' ')}\0${flags.join(' ')}`).digest('hex').slice(0, 16);
  const out = path.join(outDir, `libisapihost-${hash}${LIB_EXT}`);
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(outDir, { recursive: true });
  const tmp = `${out}.${process.pid}.${Date.now()}.tmp`;
  const result = spawnSync(command, [...argv.slice(1), ...HOST_CFLAGS, '-o', tmp, HOST_SOURCE, ...HOST_LDFLAGS], { encoding: 'utf8' });
  if (result.error) {
    fs.rmSync(tmp, { force: true });
    const code = (result.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new Error(
        `the C reference host needs a C compiler: \`${command}\` was not found; install gcc (apt-get install gcc) or point CC at a C compiler`,
        { cause: result.error },
      );
    }
    throw new Error(`the C reference host could not run the C compiler \`${command}\`: ${result.error.message}`, { cause: result.error });
  }
  if (result.status !== 0) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`compiling the C reference host with \`${argv.join(' ')}\` failed (exit ${result.status ?? result.signal}):\n${result.stderr}${result.stdout}`);
  }
  fs.renameSync(tmp, out);
  return out;
}

/** Build the host with `$CC` (default `cc`) into test/native/build, once per source version. */
export function buildCHost(): string {
  return compileHost(process.env.CC ?? 'cc', BUILD_DIR);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* The native API                                                                                               */
/* ---------------------------------------------------------------------------------------------------------- */

/** host_request_set_field's `which`. */
const Field = { METHOD: 0, QUERY: 1, PATH_INFO: 2, PATH_TRANSLATED: 3, CONTENT_TYPE: 4 } as const;
/** host_result_bytes's `which`. */
const Bytes = { STATUS: 0, HEADERS: 1, BODY: 2, LOG_DATA: 3, REDIRECT: 4 } as const;
/** host_result_int's `which`. */
const Int = {
  KEEP_CONN: 0,
  HTTP_STATUS: 1,
  DONE_STATUS: 2,
  DONE_COUNT: 3,
  PROC_RESULT: 4,
  CLOSED: 5,
  FLUSH_FLAG: 6,
  V_USE_AFTER_DONE: 7,
  V_ASYNC_OVERLAP: 8,
  V_HEADERS_TWICE: 9,
  V_DONE_TWICE: 10,
  TIMED_OUT: 11,
  PROC_TID: 12,
  PROC_WORKER: 13,
  COMPLETION_TID: 14,
  COMPLETIONS: 15,
  BODY_READ: 16,
  REFUSED: 17,
  DROPPED: 18,
  COMPLETIONS_REFUSED: 19,
  ISSUE_NS: 20,
  END_NS: 21,
} as const;
/** host_gate_stats's indices (GS_* in host.c), in order. */
const GATE_STATS = [
  'state',
  'maxJsCalls',
  'inFlight',
  'peakInFlight',
  'procCalls',
  'completionCalls',
  'startCalls',
  'terminateCalls',
  'capWaits',
  'openSessions',
  'outstandingIo',
  'refusedNotStarted',
  'refusedDraining',
  'refusedAfterTerminate',
  'completionsRefused',
  'callsAfterTerminate',
  'sessionsOpened',
] as const;
const GATE_STATES = ['loaded', 'accepting', 'draining', 'closing', 'terminated'] as const;
const REFUSALS = [null, 'not-started', 'draining', 'terminated'] as const;
/** host_terminate's out[] (TR_* in host.c). */
const TR = {
  DRAINED: 0,
  TERM_CALLED: 1,
  TERM_RESULT: 2,
  INFLIGHT_AT_STOP: 3,
  OPEN_AT_STOP: 4,
  OPEN_AT_TERMINATE: 5,
  DRAIN_US: 6,
  TERM_US: 7,
  REFUSED_WHILE_DRAINING: 8,
  COUNT: 9,
} as const;
/** host_result_list_*'s `which`. */
const List = { UNHEALTHY: 0, LOG_PARAMS: 1 } as const;

export interface HostApi {
  readonly koffi: Koffi;
  readonly path: string;
  readonly request_new: Fn<[], bigint | null>;
  readonly request_set_field: Fn<[bigint, number, Buffer, number], number>;
  readonly request_add_var: Fn<[bigint, string, Buffer | null, number, number], number>;
  readonly request_set_body: Fn<[bigint, Buffer, number, number, number], number>;
  readonly request_set_options: Fn<[bigint, number, number, number, number], number>;
  readonly request_set_faults: Fn<[bigint, number, string | null, number], number>;
  readonly request_ecb: Fn<[bigint], bigint>;
  readonly request_free: Fn<[bigint], void>;
  readonly run: Fn<[bigint, BigUint64Array, number, number, number], number>;
  readonly run_ex: Fn<[bigint | null, bigint, BigUint64Array, number, number, number, number], number>;
  readonly run_opts: Fn<[bigint | null, bigint, BigUint64Array, number, number, number, number, number], number>;
  readonly gate_new: Fn<[number, number], bigint | null>;
  readonly gate_free: Fn<[bigint], void>;
  readonly gate_stats: Fn<[bigint, BigInt64Array, number], number>;
  readonly gate_wait: Fn<[bigint, number, number, number], number | bigint>;
  readonly start_extension: Fn<[bigint, bigint, Uint32Array, Buffer, number], number>;
  readonly terminate: Fn<[bigint, bigint | null, number, number, BigInt64Array, number], number>;
  readonly result_bytes: Fn<[bigint, number, Uint32Array], bigint | null>;
  readonly result_int: Fn<[bigint, number], number | bigint>;
  readonly result_list_count: Fn<[bigint, number], number>;
  readonly result_list_item: Fn<[bigint, number, number, Uint32Array], bigint | null>;
  readonly last_error: Fn<[], number>;
  readonly thread_id: Fn<[], number | bigint>;
  readonly ecb_layout: Fn<[Uint32Array, number], number>;
  readonly pinned: Fn<[], number>;
  /** `uint32_t __stdcall HttpExtensionProc(void *pECB)`; anonymous, so it never clashes with src/ecb's named types. */
  readonly procType: KoffiType;
}

let api: HostApi | null = null;

/** Build (if needed) and load the host library; the bindings are made once per module instance. */
export function loadCHost(): HostApi {
  if (api) return api;
  const libPath = buildCHost();
  const koffi = getKoffi();
  const lib = koffi.load(libPath);
  const f = <A extends unknown[], R>(decl: string): Fn<A, R> => lib.func(decl) as Fn<A, R>;
  api = {
    koffi,
    path: libPath,
    request_new: f('void *host_request_new(void)'),
    request_set_field: f('int host_request_set_field(void *req, uint32_t which, const uint8_t *bytes, uint32_t len)'),
    request_add_var: f('int host_request_add_var(void *req, const char *name, const uint8_t *value, uint32_t len, int32_t no_data)'),
    request_set_body: f('int host_request_set_body(void *req, const uint8_t *data, uint32_t len, uint32_t total_bytes, uint32_t read_ahead)'),
    request_set_options: f('int host_request_set_options(void *req, int32_t keep_conn, uint32_t async_delay_us, uint32_t timeout_ms, int64_t abort_after)'),
    request_set_faults: f('int host_request_set_faults(void *req, int64_t drop_after, const char *fail_var, uint32_t fail_var_error)'),
    request_ecb: f('void *host_request_ecb(void *req)'),
    request_free: f('void host_request_free(void *req)'),
    run: f('int32_t host_run(void *proc, void *reqs, uint32_t n, uint32_t threads, uint32_t io_threads)'),
    run_ex: f('int32_t host_run_ex(void *gate, void *proc, void *reqs, uint32_t n, uint32_t threads, uint32_t io_threads, uint32_t interval_us)'),
    run_opts: f('int32_t host_run_opts(void *gate, void *proc, void *reqs, uint32_t n, uint32_t threads, uint32_t io_threads, uint32_t interval_us, uint32_t flags)'),
    gate_new: f('void *host_gate_new(uint32_t max_js_calls, int32_t accepting)'),
    gate_free: f('void host_gate_free(void *gate)'),
    // Out-arrays are `void *`: a TypedArray is then passed by address (koffi.md 6d), which .async() needs.
    gate_stats: f('uint32_t host_gate_stats(void *gate, void *out, uint32_t n)'),
    gate_wait: f('int64_t host_gate_wait(void *gate, uint32_t which, int64_t value, uint32_t timeout_ms)'),
    start_extension: f('int32_t host_start_extension(void *gate, void *gev, void *version, void *desc, uint32_t desc_len)'),
    terminate: f('int32_t host_terminate(void *gate, void *term_fn, uint32_t flags, uint32_t timeout_ms, void *out, uint32_t n)'),
    result_bytes: f('void *host_result_bytes(void *req, uint32_t which, _Out_ uint32_t *len)'),
    result_int: f('int64_t host_result_int(void *req, uint32_t which)'),
    result_list_count: f('uint32_t host_result_list_count(void *req, uint32_t which)'),
    result_list_item: f('void *host_result_list_item(void *req, uint32_t which, uint32_t i, _Out_ uint32_t *len)'),
    last_error: f('uint32_t host_last_error(void)'),
    thread_id: f('uint64_t host_thread_id(void)'),
    ecb_layout: f('uint32_t host_ecb_layout(_Out_ uint32_t *out, uint32_t n)'),
    pinned: f('int32_t host_pinned(void)'),
    procType: koffi.proto('uint32_t __stdcall (void *pECB)'),
  };
  return api;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Results                                                                                                      */
/* ---------------------------------------------------------------------------------------------------------- */

export interface CHostViolations {
  /** Calls on an ECB after its session ended (they failed with ERROR_INVALID_HANDLE). */
  useAfterDone: number;
  /** A second I/O while an async one was outstanding (failed with ERROR_INVALID_PARAMETER). */
  asyncOverlap: number;
  /** SEND_RESPONSE_HEADER(_EX) after headers were sent. */
  headersTwice: number;
  /** DONE_WITH_SESSION after DONE_WITH_SESSION. */
  doneTwice: number;
}

export interface CHostResult extends RecordedResponse {
  violations: CHostViolations;
  /** The ECB address the proc saw. Dead once the result is returned: never dereference it. */
  ecbAddress: bigint;
  /** The host gave up waiting for DONE_WITH_SESSION or for async I/O (timeoutMs after the proc returned). */
  timedOut: boolean;
  /** OS thread id of the host thread that called HttpExtensionProc. */
  procThread: number;
  /** Index of that host thread in the run (0 … threads-1). */
  procWorker: number;
  /** OS thread id of the host I/O thread that made the last completion call; 0 if there was none. */
  completionThread: number;
  /** How many IO completion calls the host made. */
  completions: number;
  /** Body bytes the client delivered: read-ahead plus everything ReadClient / async reads handed out. */
  bodyBytesRead: number;
  /** An exception that escaped a JS proc (the trampoline caught it and returned HSE_STATUS_ERROR), else null. */
  procError: unknown;
  /**
   * Why the loader (the host's gate) answered with its own 503 without calling JS: before GetExtensionVersion,
   * while draining for TerminateExtension, or after it. null when the proc entered JS.
   */
  refused: 'not-started' | 'draining' | 'terminated' | null;
  /** The dropAfterBytes kill switch fired: the client went away mid-response. */
  clientDropped: boolean;
  /** Completions the gate did not deliver because the extension was closing or terminated. */
  completionsRefused: number;
  /**
   * The host's CLOCK_MONOTONIC in ns (process.hrtime's clock on Linux) when a host thread took the request, before
   * the gate and the call into the proc; 0 if it never ran. `endedNs - issuedNs` is the latency the host saw.
   */
  issuedNs: number;
  /** ... when the session ended: DONE_WITH_SESSION, a non-PENDING return, or the host's timeout; 0 if never. */
  endedNs: number;
}

/** The gate's counters: what the loader let into JS, and what it refused. */
export interface CHostGateStats {
  state: (typeof GATE_STATES)[number];
  /** The cap on concurrent calls into JS. */
  maxJsCalls: number;
  /** Calls into JS right now. */
  inFlight: number;
  /** The most calls into JS that were ever in flight at once (never above maxJsCalls). */
  peakInFlight: number;
  /** HttpExtensionProc calls that entered JS. */
  procCalls: number;
  /** IO completion calls that entered JS. */
  completionCalls: number;
  /** GetExtensionVersion calls. */
  startCalls: number;
  /** TerminateExtension calls (at most 1). */
  terminateCalls: number;
  /** Calls that had to wait at the cap. */
  capWaits: number;
  /** Sessions that entered JS and have not ended. */
  openSessions: number;
  /** Their async operations not yet completed. */
  outstandingIo: number;
  /** Requests answered with the native 503 before GetExtensionVersion. */
  refusedNotStarted: number;
  /** ... between terminate() and the JS TerminateExtension. */
  refusedDraining: number;
  /** ... after the JS TerminateExtension was called. */
  refusedAfterTerminate: number;
  /** Completions not delivered (closing or terminated). */
  completionsRefused: number;
  /** Trip-wire: calls into JS that entered after TerminateExtension was called. Must be 0. */
  callsAfterTerminate: number;
  sessionsOpened: number;
}

/** What host.terminate() did. */
export interface CHostTermination {
  /** In-flight calls reached 0, every session ended and every async op completed within timeoutMs. */
  drained: boolean;
  /** Calls into JS in flight when the host stopped accepting. */
  inFlightAtStop: number;
  /** Sessions open when the host stopped accepting. */
  openSessionsAtStop: number;
  /** Sessions that ended during the drain. */
  drainedSessions: number;
  /** Sessions still open when TerminateExtension was called (0 when drained). */
  openSessionsAtTerminate: number;
  /** Whether the JS TerminateExtension was called (false only if JS never returned the calls in flight). */
  terminateCalled: boolean;
  /** Its return value, null if it was not called. */
  terminateResult: boolean | null;
  /** Requests the host answered with its own 503 while draining. */
  refusedWhileDraining: number;
  /** Requests refused after TerminateExtension, as of when terminate() resolved (see stats() for later ones). */
  refusedAfterTerminate: number;
  /** Stop → TerminateExtension, and time inside TerminateExtension. */
  drainMs: number;
  terminateMs: number;
}

export interface CHostOptions {
  /** The loader's cap on concurrent calls into JS. Default 64. Must be below koffi's max_async_calls. */
  maxJsCalls?: number;
  /** Refuse requests (native 503) until start() ran GetExtensionVersion, as IIS does. Default false: accepting. */
  requireStart?: boolean;
}

export type ProcFunction = (pEcb: bigint) => number;

export interface CHostRequestOptions {
  /** What HSE_REQ_IS_KEEP_CONN answers. Default false. */
  keepConn?: boolean;
  /** How long the host's I/O threads wait before they touch an async buffer and complete. Default 0. */
  asyncDelayUs?: number;
  /** How long to wait for DONE_WITH_SESSION and the async I/O after the proc returned. Default 30000. */
  timeoutMs?: number;
  /** The client disconnects after this many body bytes (on top of the model's abortAfterBytes). */
  abortAfterBytes?: number;
  /** I/O threads serving async operations. Default 2. */
  ioThreads?: number;
  /** Kill switch: the client disconnects once this many response body bytes went out (host.c KILL SWITCHES). */
  dropAfterBytes?: number;
  /** Kill switch: GetServerVariable of this name fails with `failVariableError` (default 87). */
  failVariable?: string;
  failVariableError?: number;
}

export interface CHostManyOptions extends CHostRequestOptions {
  /** Host threads calling HttpExtensionProc; 0 calls it on the run's own thread. Default 4. */
  threads?: number;
  /** Each host thread pauses this long before each request (the clients' arrival rate). Default 0. */
  intervalUs?: number;
  /**
   * Each host thread waits for its request's session to end before it takes the next (one keep-alive client per
   * host thread: at most `threads` requests in flight). Default false: a thread moves on at HSE_STATUS_PENDING, as
   * IIS's threads do, so all of the run's requests may be in flight at once (an open-loop flood).
   */
  closedLoop?: boolean;
  /**
   * Call the proc straight from the host threads, without the gate (no cap, no accepting check): only to show
   * what the gate prevents (test/native/cap-scenario.ts crashes koffi this way). Default false.
   */
  bypassGate?: boolean;
}

export interface CHostTerminateOptions {
  /** HSE_TERM_* flags for TerminateExtension. Default HSE_TERM_MUST_UNLOAD (2). */
  flags?: number;
  /** How long to wait for the drain (and again for calls still inside JS). Default 30000. */
  timeoutMs?: number;
}

/* Requests freed lazily, so that a late touch of a dead ECB hits live memory (and counts as a violation). */
const GRAVEYARD_MAX_BYTES = 64 * 1024 * 1024;
const GRAVEYARD_MAX_COUNT = 4096;

/* At most this many host_run calls hold a libuv pool thread at once (see the header comment). */
const MAX_CONCURRENT_RUNS = Math.max(1, (Number(process.env.UV_THREADPOOL_SIZE) || 4) - 2);
let runsActive = 0;
const runQueue: (() => void)[] = [];

async function acquireRunSlot(): Promise<void> {
  if (runsActive < MAX_CONCURRENT_RUNS) {
    runsActive++;
    return;
  }
  await new Promise<void>((resolve) => runQueue.push(resolve));
}

function releaseRunSlot(): void {
  const next = runQueue.shift();
  if (next) next();
  else runsActive--;
}

/** The variable table IIS would answer for this request, with the model's own lookup() so values match exactly. */
export function variableTable(model: RequestModel): [string, Buffer | null][] {
  const seen = new Set<string>();
  const table: [string, Buffer | null][] = [];
  const add = (name: string): void => {
    const key = name.toUpperCase();
    if (seen.has(key)) return;
    seen.add(key);
    const value = model.lookup(name);
    if (value !== undefined) table.push([name, value]);
  };
  for (const name of model.variableNames()) {
    add(name);
    if (!/^(HTTP_|HEADER_|ALL_)/i.test(name)) add(`UNICODE_${name}`);
  }
  for (const [header] of model.headers) {
    add(`HTTP_${header.toUpperCase().replace(/-/g, '_')}`);
    add(`HEADER_${header}`);
  }
  return table;
}

export class CHost {
  readonly api: HostApi;
  /** The cap on concurrent calls into JS this host enforces. */
  readonly maxJsCalls: number;
  private gate: bigint | null;
  private trampoline: bigint | null = null;
  private readonly procs = new Map<bigint, { fn: ProcFunction; error: unknown }>();
  private readonly inflight = new Set<Promise<unknown>>();
  private graveyard: { req: bigint; bytes: number }[] = [];
  private graveyardBytes = 0;
  private closed = false;

  constructor(options: CHostOptions = {}) {
    this.api = loadCHost();
    const maxJsCalls = options.maxJsCalls ?? DEFAULT_MAX_JS_CALLS;
    const maxAsync = this.api.koffi.config().max_async_calls ?? 256;
    if (!Number.isInteger(maxJsCalls) || maxJsCalls < 1 || maxJsCalls >= maxAsync) {
      // Each host thread blocked in a call into JS holds one of koffi's async slots; past max_async_calls koffi
      // crashes the process (koffi.md 3c), so the cap must stay below it (docs/native-host.md).
      throw new RangeError(`CHost maxJsCalls must be an integer from 1 to max_async_calls - 1 (${maxAsync - 1}), got ${String(options.maxJsCalls)}`);
    }
    this.maxJsCalls = maxJsCalls;
    const gate = this.api.gate_new(maxJsCalls, options.requireStart ? 0 : 1);
    if (gate === null) throw new Error('host_gate_new: out of memory');
    this.gate = gate;
  }

  private liveGate(): bigint {
    if (this.closed || this.gate === null) throw new Error('CHost is closed');
    return this.gate;
  }

  /** Keep a native call that uses the gate in `inflight`, so close() frees the gate only after it returned. */
  private async track<T>(work: Promise<T>): Promise<T> {
    this.inflight.add(work);
    try {
      return await work;
    } finally {
      this.inflight.delete(work);
    }
  }

  /**
   * The loader's GetExtensionVersion: calls `getExtensionVersion` (a native pointer, e.g.
   * `ext.nativeEntryPoints().GetExtensionVersion`) from a host thread, through the gate, and starts accepting
   * requests if it returned TRUE. Rejects if the host is already terminating.
   */
  start(getExtensionVersion: bigint): Promise<{ ok: boolean; version: number; description: string }> {
    const gate = this.liveGate();
    const version = new Uint32Array(1);
    const desc = Buffer.alloc(256);
    const work = new Promise<{ ok: boolean; version: number; description: string }>((resolve, reject) => {
      this.api.start_extension.async(gate, getExtensionVersion, version, desc, desc.length, (err: unknown, rc: number) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        if (rc < 0) return reject(new Error('host_start_extension refused: the host is terminating, or a bad pointer'));
        const end = desc.indexOf(0);
        resolve({ ok: rc === 1, version: version[0] as number, description: desc.toString('latin1', 0, end < 0 ? desc.length : end) });
      });
    });
    return this.track(work);
  }

  /**
   * The loader's TerminateExtension, from a host thread: stop accepting (new requests get the host's own 503),
   * wait until no call is inside JS, every session that entered JS has called DONE and no async I/O is
   * outstanding (up to timeoutMs), then call `terminateExtension` (a native pointer) once; nothing calls into JS
   * afterwards. Runs in flight keep going: their remaining requests are refused natively. Once per host.
   */
  terminate(terminateExtension: bigint | null, options: CHostTerminateOptions = {}): Promise<CHostTermination> {
    const gate = this.liveGate();
    const out = new BigInt64Array(TR.COUNT);
    const work = new Promise<CHostTermination>((resolve, reject) => {
      this.api.terminate.async(gate, terminateExtension, options.flags ?? HSE_TERM_MUST_UNLOAD, options.timeoutMs ?? 30000, out, out.length, (err: unknown, rc: number) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        if (rc === -2) return reject(new Error('host_terminate already ran on this host'));
        if (rc !== 0) return reject(new Error('host_terminate refused its arguments'));
        const v = (i: number): number => Number(out[i]);
        const result = v(TR.TERM_RESULT);
        resolve({
          drained: v(TR.DRAINED) === 1,
          inFlightAtStop: v(TR.INFLIGHT_AT_STOP),
          openSessionsAtStop: v(TR.OPEN_AT_STOP),
          drainedSessions: v(TR.OPEN_AT_STOP) - v(TR.OPEN_AT_TERMINATE),
          openSessionsAtTerminate: v(TR.OPEN_AT_TERMINATE),
          terminateCalled: v(TR.TERM_CALLED) === 1,
          terminateResult: result < 0 ? null : result === 1,
          refusedWhileDraining: v(TR.REFUSED_WHILE_DRAINING),
          refusedAfterTerminate: this.stats().refusedAfterTerminate,
          drainMs: v(TR.DRAIN_US) / 1000,
          terminateMs: v(TR.TERM_US) / 1000,
        });
      });
    });
    return this.track(work);
  }

  /**
   * The gate's counters (a consistent snapshot; a short lock, never a wait on JS, so it is safe on the JS thread).
   * Readable until close() has finished, including from the callbacks of calls close() waits for.
   */
  stats(): CHostGateStats {
    if (this.gate === null) throw new Error('CHost is closed');
    const out = new BigInt64Array(GATE_STATS.length);
    this.api.gate_stats(this.gate, out, out.length);
    const stats = {} as Record<(typeof GATE_STATS)[number], number>;
    GATE_STATS.forEach((name, i) => (stats[name] = Number(out[i])));
    return { ...stats, state: GATE_STATES[stats.state] ?? 'loaded' } as CHostGateStats;
  }

  /** Resolve once a gate counter reaches `value` (or after timeoutMs), with its value then. Waits on a host thread. */
  waitFor(counter: Exclude<keyof CHostGateStats, 'state'>, value: number, timeoutMs = 30000): Promise<number> {
    const gate = this.liveGate();
    const which = GATE_STATS.indexOf(counter);
    const work = new Promise<number>((resolve, reject) => {
      this.api.gate_wait.async(gate, which, value, timeoutMs, (err: unknown, v: number | bigint) => {
        if (err) reject(err instanceof Error ? err : new Error(String(err)));
        else resolve(Number(v));
      });
    });
    return this.track(work);
  }

  /** Run one request; `proc` is a native HttpExtensionProc address or a JS function given the ECB address. */
  async execute(model: RequestModel, proc: bigint | ProcFunction, opts: CHostRequestOptions = {}): Promise<CHostResult> {
    const [result] = await this.executeMany([model], proc, { ...opts, threads: 1 });
    return result as CHostResult;
  }

  /** Run many requests from `threads` host threads at once; results come back in the order of `models`. */
  async executeMany(models: readonly RequestModel[], proc: bigint | ProcFunction, opts: CHostManyOptions = {}): Promise<CHostResult[]> {
    const gate = this.liveGate();
    return this.track(this.runMany(models, proc, opts, gate));
  }

  private async runMany(models: readonly RequestModel[], proc: bigint | ProcFunction, opts: CHostManyOptions, gate: bigint): Promise<CHostResult[]> {
    const { api } = this;
    const built: { req: bigint; bodyLength: number }[] = [];
    try {
      for (const model of models) built.push(await this.buildRequest(model, opts));
    } catch (err) {
      for (const { req } of built) api.request_free(req);
      throw err;
    }
    const reqs = built.map((b) => b.req);
    const ecbs = reqs.map((req) => api.request_ecb(req));
    try {
      let procPtr: bigint;
      if (typeof proc === 'bigint') {
        procPtr = proc;
      } else {
        procPtr = this.ensureTrampoline();
        for (const ecb of ecbs) this.procs.set(ecb, { fn: proc, error: null });
      }
      const handles = new BigUint64Array(reqs);
      const threads = opts.threads ?? 4;
      const ioThreads = opts.ioThreads ?? 2;
      await acquireRunSlot();
      try {
        await new Promise<number>((resolve, reject) => {
          // `handles` stays referenced by this closure until the call returns.
          const flags = opts.closedLoop ? 1 : 0; // HOST_RUN_CLOSED_LOOP
          api.run_opts.async(opts.bypassGate ? null : gate, procPtr, handles, reqs.length, threads, ioThreads, opts.intervalUs ?? 0, flags, (err: unknown, timeouts: number) => {
            if (err) reject(err instanceof Error ? err : new Error(String(err)));
            else if (timeouts < 0) reject(new Error('host_run refused the requests (bad handle, or a request that already ran)'));
            else resolve(timeouts);
          });
        });
      } finally {
        releaseRunSlot();
      }
      return reqs.map((req, i) => this.collect(req, ecbs[i] as bigint));
    } finally {
      for (const ecb of ecbs) this.procs.delete(ecb);
      for (const { req, bodyLength } of built) this.bury(req, bodyLength);
    }
  }

  private async buildRequest(model: RequestModel, opts: CHostRequestOptions): Promise<{ req: bigint; bodyLength: number }> {
    const { api } = this;
    const body = await model.body.readAll();
    const req = api.request_new();
    if (req === null) throw new Error('host_request_new: out of memory');
    try {
      const check = (rc: number, what: string): void => {
        if (rc !== 0) throw new Error(`${what} failed in the C host`);
      };
      const fields: [number, string][] = [
        [Field.METHOD, model.method],
        [Field.QUERY, model.queryString],
        [Field.PATH_INFO, model.path],
        [Field.PATH_TRANSLATED, model.pathTranslated],
        [Field.CONTENT_TYPE, model.contentType],
      ];
      for (const [which, text] of fields) {
        const bytes = toAnsi(text);
        check(api.request_set_field(req, which, bytes, bytes.length), 'host_request_set_field');
      }
      for (const [name, value] of variableTable(model)) {
        check(api.request_add_var(req, name, value, value === null ? 0 : value.length, value === null ? 1 : 0), 'host_request_add_var');
      }
      check(api.request_set_body(req, body, body.length, model.totalBytes, model.readAheadSize), 'host_request_set_body');
      check(
        api.request_set_options(req, opts.keepConn ? 1 : 0, opts.asyncDelayUs ?? 0, opts.timeoutMs ?? 30000, opts.abortAfterBytes ?? -1),
        'host_request_set_options',
      );
      if (opts.dropAfterBytes !== undefined || opts.failVariable !== undefined) {
        check(api.request_set_faults(req, opts.dropAfterBytes ?? -1, opts.failVariable ?? null, opts.failVariableError ?? 0), 'host_request_set_faults');
      }
      return { req, bodyLength: body.length };
    } catch (err) {
      api.request_free(req);
      throw err;
    }
  }

  private ensureTrampoline(): bigint {
    if (this.trampoline !== null) return this.trampoline;
    const { koffi } = this.api;
    // One registration per CHost; the ECB address picks the JS proc. Everything is caught: an exception escaping
    // a koffi callback would disable it (koffi.md pitfall 6).
    const trampoline = (pEcb: unknown): number => {
      const entry = typeof pEcb === 'bigint' ? this.procs.get(pEcb) : undefined;
      if (!entry) return HSE_STATUS_ERROR;
      try {
        const status = entry.fn(pEcb as bigint);
        if (typeof status !== 'number') {
          entry.error = new TypeError(`HttpExtensionProc must return an HSE_STATUS_* number synchronously, got ${typeof status}`);
          return HSE_STATUS_ERROR;
        }
        return status >>> 0;
      } catch (err) {
        entry.error = err;
        return HSE_STATUS_ERROR;
      }
    };
    this.trampoline = koffi.register(trampoline, koffi.pointer(this.api.procType)) as bigint;
    return this.trampoline;
  }

  private bytes(req: bigint, which: number): Buffer | null {
    const { api } = this;
    const len = new Uint32Array(1);
    const ptr = api.result_bytes(req, which, len);
    if (ptr === null) return null;
    return copyOut(api.koffi, ptr, len[0] as number);
  }

  private bytesLength(req: bigint): number | null {
    const len = new Uint32Array(1);
    return this.api.result_bytes(req, Bytes.BODY, len) === null ? null : (len[0] as number);
  }

  private list(req: bigint, which: number): string[] {
    const { api } = this;
    const out: string[] = [];
    const n = api.result_list_count(req, which);
    const len = new Uint32Array(1);
    for (let i = 0; i < n; i++) {
      const ptr = api.result_list_item(req, which, i, len);
      out.push(ptr === null ? '' : copyOut(api.koffi, ptr, len[0] as number).toString('latin1'));
    }
    return out;
  }

  private collect(req: bigint, ecb: bigint): CHostResult {
    const int = (which: number): number => Number(this.api.result_int(req, which));
    const keep = int(Int.KEEP_CONN);
    const done = int(Int.DONE_STATUS);
    const proc = int(Int.PROC_RESULT);
    return {
      // Status, headers, URLs and log parameters are byte strings (latin1, as Node writes heads); lpszLogData is
      // UTF-8, as src/ecb/request-model.ts truncateLogData encodes it.
      status: this.bytes(req, Bytes.STATUS)?.toString('latin1') ?? null,
      headerBlock: this.bytes(req, Bytes.HEADERS)?.toString('latin1') ?? null,
      keepConn: keep < 0 ? null : keep === 1,
      body: this.bytes(req, Bytes.BODY) ?? Buffer.alloc(0),
      httpStatusCode: int(Int.HTTP_STATUS),
      logData: this.bytes(req, Bytes.LOG_DATA)?.toString('utf8') ?? '',
      doneStatus: done < 0 ? null : done,
      doneCount: int(Int.DONE_COUNT),
      procResult: proc < 0 ? null : proc,
      closedConnection: int(Int.CLOSED) === 1,
      flushFlag: int(Int.FLUSH_FLAG) === 1,
      redirect: this.bytes(req, Bytes.REDIRECT)?.toString('latin1') ?? null,
      unhealthy: this.list(req, List.UNHEALTHY),
      logParameters: this.list(req, List.LOG_PARAMS),
      violations: {
        useAfterDone: int(Int.V_USE_AFTER_DONE),
        asyncOverlap: int(Int.V_ASYNC_OVERLAP),
        headersTwice: int(Int.V_HEADERS_TWICE),
        doneTwice: int(Int.V_DONE_TWICE),
      },
      ecbAddress: ecb,
      timedOut: int(Int.TIMED_OUT) === 1,
      procThread: int(Int.PROC_TID),
      procWorker: int(Int.PROC_WORKER),
      completionThread: int(Int.COMPLETION_TID),
      completions: int(Int.COMPLETIONS),
      bodyBytesRead: int(Int.BODY_READ),
      procError: this.procs.get(ecb)?.error ?? null,
      refused: REFUSALS[int(Int.REFUSED)] ?? null,
      clientDropped: int(Int.DROPPED) === 1,
      completionsRefused: int(Int.COMPLETIONS_REFUSED),
      issuedNs: int(Int.ISSUE_NS),
      endedNs: int(Int.END_NS),
    };
  }

  private bury(req: bigint, bodyLength: number): void {
    // The request holds the body and the response; the response size is read before the copy goes.
    const bytes = bodyLength + (this.bytesLength(req) ?? 0);
    this.graveyard.push({ req, bytes });
    this.graveyardBytes += bytes;
    while (this.graveyard.length > GRAVEYARD_MAX_COUNT || this.graveyardBytes > GRAVEYARD_MAX_BYTES) {
      const old = this.graveyard.shift();
      if (!old) break;
      this.graveyardBytes -= old.bytes;
      this.api.request_free(old.req);
    }
  }

  /**
   * Free the finished requests kept for late-touch detection (up to 4096 of them, 64 MB) now, and return how many.
   * For memory measurements (bench/soak.ts), at a point where no session can be touched again: a touch after this
   * is a use-after-free instead of a counted violation.
   */
  freeFinished(): number {
    const n = this.graveyard.length;
    for (const { req } of this.graveyard) this.api.request_free(req);
    this.graveyard = [];
    this.graveyardBytes = 0;
    return n;
  }

  /**
   * Wait for runs (and start/terminate/waitFor calls) in flight, free every native request and the gate, and
   * unregister the proc trampoline. When nothing is in flight the cleanup happens before this returns, so even an
   * un-awaited close() leaves koffi's callback count where it was.
   */
  close(): Promise<void> {
    this.closed = true;
    const finish = (): void => {
      this.freeFinished();
      if (this.gate !== null) {
        this.api.gate_free(this.gate);
        this.gate = null;
      }
      if (this.trampoline !== null) {
        this.api.koffi.unregister(this.trampoline);
        this.trampoline = null;
      }
    };
    if (this.inflight.size === 0) {
      finish();
      return Promise.resolve();
    }
    return Promise.allSettled([...this.inflight]).then(finish);
  }
}

/** Copy `len` bytes of native memory into a fresh Buffer (a koffi view would dangle once the request is freed). */
function copyOut(koffi: Koffi, ptr: bigint, len: number): Buffer {
  if (len === 0) return Buffer.alloc(0);
  return Buffer.from(new Uint8Array(koffi.view(ptr, len)));
}

/** The host's thread-local last error (the same value it put in errno). */
export function hostLastError(): number {
  return loadCHost().last_error();
}

/** The OS id of the calling thread, as the host records procThread / completionThread. */
export function hostThreadId(): number {
  return Number(loadCHost().thread_id());
}

/** [sizeof(ECB), offset of each of its 17 fields in declaration order], as the C compiler laid it out. */
export function hostEcbLayout(): number[] {
  const out = new Uint32Array(18);
  loadCHost().ecb_layout(out, out.length);
  return [...out];
}
