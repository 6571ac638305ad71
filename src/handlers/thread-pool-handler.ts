/**
 * ThreadPoolHandler: spreads requests over N worker threads, as isapi-wsgi's ISAPIThreadPoolHandler did.
 *
 * The main thread's HttpExtensionProc only posts the ECB *address* to the least busy worker and returns
 * HSE_STATUS_PENDING; the worker does all of that request's ECB I/O from its own thread, with its own completion
 * routine, and calls DONE_WITH_SESSION (worker-entry.ts). The main thread keeps what it needs to finish a request
 * whose worker dies: the address, and the worker's announcements in shared memory (slot-state.ts).
 *
 * - Overload: past `maxInFlightPerWorker` on every worker the request waits in a queue; past `maxQueue` it is
 *   answered at once with 503 and Retry-After, on the main thread, without involving a worker.
 * - Crash isolation: a worker that dies (uncaught exception, process.exit(), out of memory, terminate()) has each
 *   request it held answered with 500 if its head was not sent, or its connection closed otherwise; each gets
 *   DONE_WITH_SESSION exactly once, from the main thread, and no ECB is touched after the worker announced DONE.
 *   The worker is respawned with backoff; after `crashLimit.count` crashes within `crashLimit.windowMs` the handler
 *   calls HSE_REQ_REPORT_UNHEALTHY with a reason, on an ECB that is still pending, and IIS recycles the pool.
 * - A request still in flight long after its timeout means the worker's thread is stuck: the worker is terminated,
 *   and its requests are finished as for a crash.
 * - Reload (`watch`, or `reload()`): a fresh set of workers loads the app from disk (each worker has its own ESM and
 *   CJS module caches, so fresh workers read fresh code) and runs its start-up, while the current workers keep
 *   serving. Once every fresh worker is ready they take all new and queued requests; the previous ones get `stop`,
 *   finish what they hold and exit through the same path as at shutdown (every koffi callback unregistered before
 *   the thread ends: worker-entry.ts). If any fresh worker fails to load, to start or dies first, the fresh set is
 *   discarded and the current workers go on serving; the failure is reported (kind `reload`). No request is turned
 *   away or cut short by a reload, except one still running on a previous worker after `drainTimeout`.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { Ecb } from '../ecb/ecb.js';
import { HSE_STATUS_ERROR, HSE_STATUS_PENDING } from '../ecb/constants.js';
import { NativeEcb } from '../ecb/native-ecb.js';
import { IsapiError, ErrorCodes, invalidArgument } from '../errors.js';
import { DEFAULT_TIMEOUT_MS } from '../http/exchange.js';
import type { IsapiHandler } from './handler.js';
import { moduleUrl } from './load-app.js';
import { respondDirect } from './respond.js';
import type { SimpleHandlerOptions } from './simple-handler.js';
import { SLOT_DONE, SLOT_HEADERS, SLOT_IO, SlotTable } from './slot-state.js';
import type { WorkerInit } from './worker-entry.js';
import { workerFile } from './worker-path.js';
import type { TraceChannel } from '../trace/channel.js';
import { makeRecord, type TraceRecord } from '../trace/record.js';
import { poolErrorRecord, type PoolErrorKind } from '../trace/request-trace.js';
import { AppWatcher, DEFAULT_WATCH_DEBOUNCE_MS, planWatch, type WatchOption, type WatchPlan } from './app-watcher.js';

export type { PoolErrorKind } from '../trace/request-trace.js';
export type { WatchOption } from './app-watcher.js';

/** What `onReload` gets after each reload attempt. */
export interface ReloadEvent {
  /** True: the fresh workers serve from now on. False: the fresh code failed; the previous workers keep serving. */
  readonly ok: boolean;
  /** The generation serving after this attempt: 1 at start, one more after each successful reload. */
  readonly generation: number;
  /** The changed files (absolute paths) that started it; empty for a direct `reload()`. */
  readonly changed: readonly string[];
  /** Milliseconds from the start of the attempt to the switch (or the failure). */
  readonly ms: number;
  /** Requests still in flight on the previous workers at the switch: they finish there. */
  readonly draining: number;
  /** Why the attempt failed. */
  readonly error?: unknown;
}

export interface ThreadPoolHandlerOptions extends Omit<SimpleHandlerOptions, 'onError' | 'logNote'> {
  /** Worker threads. Default: os.availableParallelism(). */
  readonly workers?: number;
  /** Requests allowed to wait when every worker is at maxInFlightPerWorker. Default 1024. */
  readonly maxQueue?: number;
  /** Requests one worker serves at once (they interleave on its event loop). Default 64. */
  readonly maxInFlightPerWorker?: number;
  /** The app module's export to serve. Default `default`. */
  readonly export?: string;
  /** Environment for the workers (default: a copy of process.env). */
  readonly env?: Record<string, string | undefined>;
  /** process.argv additions for the workers. */
  readonly argv?: readonly string[];
  /** V8 limits per worker (maxOldGenerationSizeMb, ...): a worker past them dies alone. */
  readonly resourceLimits?: ResourceLimits;
  /** Crashes within a window that make the handler ask IIS for a recycle. Default 5 within 60 s. */
  readonly crashLimit?: { readonly count: number; readonly windowMs: number };
  /** How long TerminateExtension lets requests in flight finish. Default 30 s. */
  readonly drainTimeout?: number;
  /** Where the pool reports app errors, worker crashes, start-up and reload failures. Default: console.error. */
  readonly onError?: (error: unknown, context: { readonly kind: PoolErrorKind; readonly worker: number }) => void;
  /**
   * Reload on change (app-watcher.ts): `true` watches the app module's directory tree, except node_modules and any
   * name starting with `.`; a list names files, directories and globs relative to the app module's directory
   * (`!glob` excludes). A burst of changes (quiet for `watchDebounce` ms) starts one reload. Default false.
   */
  readonly watch?: WatchOption;
  /** Quiet time after the last change before reloading, in ms. Default 200. */
  readonly watchDebounce?: number;
  /** Called after each reload attempt, successful or not (failures also go to onError and the trace). */
  readonly onReload?: (event: ReloadEvent) => void;
  /**
   * A trace channel (createTraceChannel): the pool's reports, each request's summary and error records from the
   * workers, and (while the channel captures) the workers' console output, all forwarded to it. With a trace and
   * no onError, reports go to the trace only. Default: none, or host mode's channel.
   */
  readonly trace?: TraceChannel;
}

interface Pending {
  readonly id: number;
  readonly ecb: NativeEcb;
  slot: number;
  worker: PoolWorker | null;
  timer: NodeJS.Timeout | null;
}

/**
 * - `serving`: in `pool`, takes requests (once ready);
 * - `fresh`: loading the app for a reload, takes nothing yet;
 * - `retiring`: replaced by a reload, finishes the requests it holds, then exits;
 * - `discarded`: a fresh worker of a reload that failed or was overtaken, told to stop.
 */
type WorkerRole = 'serving' | 'fresh' | 'retiring' | 'discarded';

interface PoolWorker {
  readonly index: number;
  readonly thread: Worker;
  readonly threadId: number;
  readonly slots: SlotTable;
  readonly inFlight: Map<number, Pending>;
  role: WorkerRole;
  ready: boolean;
  stopping: boolean;
  lastError: string | null;
  /** Retiring, and terminated by us past drainTimeout (already reported). */
  expired?: boolean;
}

/** A reload in progress: its fresh workers, and what started it. */
interface Reload {
  readonly fresh: PoolWorker[];
  /** Every changed file since the attempt began (overtaking changes included). */
  changed: readonly string[];
  readonly started: number;
  /** A later change (or reload()) arrived while the fresh workers were loading: they may have read older files. */
  overtaken: boolean;
  readonly timer: NodeJS.Timeout;
  readonly settled: ((ok: boolean) => void)[];
}

/** Grace past the per-request timeout before the main thread decides a worker is stuck. */
const STUCK_GRACE_MS = 5000;
/** How long the main thread waits for an orphaned async operation to complete after CLOSE_CONNECTION. */
const ADOPT_TIMEOUT_MS = 5000;
/** How long fresh workers may take to load and start the app before the reload counts as failed. */
const RELOAD_START_TIMEOUT_MS = 60_000;
/** How long a discarded fresh worker may take to stop by itself before it is terminated. */
const DISCARD_TIMEOUT_MS = 10_000;

// Reload state, out of the way of the pool's own fields (and of users poking at the instance).
const kPlan = Symbol('watchPlan');
const kWatcher = Symbol('watcher');
const kReload = Symbol('reload');
const kRetiring = Symbol('retiring');
const kGeneration = Symbol('generation');

/** ` after changes to a, b, c` (at most five named), or nothing. */
function changedList(changed: readonly string[]): string {
  if (changed.length === 0) return '';
  return ` after changes to ${changed.slice(0, 5).join(', ')}${changed.length > 5 ? `, and ${changed.length - 5} more` : ''}`;
}

export class ThreadPoolHandler implements IsapiHandler {
  private readonly appUrl: string;
  private readonly options: ThreadPoolHandlerOptions;
  private readonly size: number;
  private readonly perWorker: number;
  private readonly maxQueue: number;
  private readonly pool: (PoolWorker | null)[];
  private readonly queue: Pending[] = [];
  private readonly crashes: number[] = [];
  private nextId = 1;
  private started = false;
  private terminating = false;
  private unhealthy: string | null = null;
  private loadFailure: string | null = null;
  private drained: (() => void) | null = null;
  private trace: TraceChannel | null = null;
  private readonly threadIds: number[] = [];
  private readonly [kPlan]: WatchPlan | null;
  private [kWatcher]: AppWatcher | null = null;
  private [kReload]: Reload | null = null;
  private readonly [kRetiring] = new Set<PoolWorker>();
  private [kGeneration] = 1;

  constructor(appModule: URL | string, options: ThreadPoolHandlerOptions = {}) {
    this.appUrl = moduleUrl(appModule);
    this.options = options;
    const positive = (name: string, value: number | undefined, fallback: number): number => {
      const v = value ?? fallback;
      if (!Number.isInteger(v) || v < 1) throw invalidArgument(`ThreadPoolHandler option ${name} must be a positive integer, got ${String(value)}`);
      return v;
    };
    this.size = positive('workers', options.workers, availableParallelism());
    this.perWorker = positive('maxInFlightPerWorker', options.maxInFlightPerWorker, 64);
    const maxQueue = options.maxQueue ?? 1024;
    if (!Number.isInteger(maxQueue) || maxQueue < 0) throw invalidArgument(`ThreadPoolHandler option maxQueue must be a non-negative integer, got ${String(options.maxQueue)}`);
    this.maxQueue = maxQueue;
    const debounce = options.watchDebounce ?? DEFAULT_WATCH_DEBOUNCE_MS;
    if (!Number.isInteger(debounce) || debounce < 0) throw invalidArgument(`ThreadPoolHandler option watchDebounce must be a non-negative integer (ms), got ${String(options.watchDebounce)}`);
    this[kPlan] = planWatch(this.appUrl, options.watch ?? false);
    this.pool = new Array<PoolWorker | null>(this.size).fill(null);
    if (options.trace) this.attachTrace(options.trace);
  }

  /** Every live worker: serving, fresh (a reload loading) and retiring (draining after a reload). */
  private *workers(): Iterable<PoolWorker> {
    for (const w of this.pool) if (w) yield w;
    for (const w of this[kRetiring]) yield w;
    if (this[kReload]) yield* this[kReload].fresh;
  }

  /** Trace to `channel` (workers forward their records to it), unless the options already named a trace. */
  attachTrace(channel: TraceChannel): void {
    if (this.trace) return;
    this.trace = channel;
    channel.on('capture', this.traceCapture);
    this.traceCapture(channel.capturing);
  }

  /** The channel started or stopped capturing: so do the workers, for their own console. */
  private readonly traceCapture = (capture: boolean): void => {
    for (const w of this.workers()) w.thread.postMessage({ type: 'trace', capture });
  };

  get inFlight(): number {
    let n = this.queue.length;
    for (const w of this.workers()) n += w.inFlight.size;
    return n;
  }

  /** The code generation serving: 1 at start, one more after each successful reload. */
  get generation(): number {
    return this[kGeneration];
  }

  /** True while a reload's fresh workers are loading. */
  get reloading(): boolean {
    return this[kReload] !== null;
  }

  /** Workers that have loaded the app and take requests. */
  get readyWorkers(): number {
    return this.pool.filter((w) => w?.ready).length;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    for (let i = 0; i < this.size; i++) this.spawn(i);
    const plan = this[kPlan];
    if (plan && !this.terminating) {
      this[kWatcher] = new AppWatcher(plan, {
        debounceMs: this.options.watchDebounce ?? DEFAULT_WATCH_DEBOUNCE_MS,
        onChange: (paths) => this.beginReload(paths),
        onError: (error) => this.report(error, 'reload', -1),
      });
    }
  }

  /**
   * Resolves once every worker has loaded the app (or rejects with the first start-up failure) and, with `watch`,
   * once the watcher has scanned the files (changes made from then on start a reload).
   */
  async ready(): Promise<void> {
    this.start();
    while (this.readyWorkers < this.size) {
      if (this.loadFailure) throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, this.loadFailure);
      await new Promise((r) => setTimeout(r, 5));
    }
    await this[kWatcher]?.ready;
  }

  private report(error: unknown, kind: PoolErrorKind, worker: number, traced = false, threadId = this.threadIds[worker]): void {
    // `traced`: the worker already wrote this error to the trace, with its request's id.
    if (this.trace && !traced) this.trace.write(poolErrorRecord(error, kind, worker, threadId));
    if (this.trace && !this.options.onError) return;
    try {
      (this.options.onError ?? ((e: unknown, c: { kind: string; worker: number }) => console.error(`isapi-http: ${c.worker < 0 ? 'thread pool' : `worker ${c.worker}`} ${c.kind}:`, e)))(error, { kind, worker });
    } catch {
      // a failing logger must not break the pool
    }
  }

  /** Start a worker for slot `index`: a serving one (into `pool`), or a fresh one for a reload (kept aside). */
  private spawn(index: number, role: 'serving' | 'fresh' = 'serving'): PoolWorker {
    const slots = new SlotTable(this.perWorker);
    const { filename, execArgv } = workerFile('worker');
    const {
      workers: _w,
      maxQueue: _q,
      maxInFlightPerWorker: _m,
      export: exportName,
      env,
      argv,
      resourceLimits,
      crashLimit: _c,
      drainTimeout: _d,
      onError: _e,
      trace: _t,
      watch: _wa,
      watchDebounce: _wd,
      onReload: _or,
      ...handlerOptions
    } = this.options;
    const trace = this.trace ? { capture: this.trace.capturing } : undefined;
    // A fresh worker runs the framework's start-up before it says ready: a reload must not switch to code whose
    // start-up fails (the serving workers would have answered 503 to everything from then on).
    const init: WorkerInit = { appUrl: this.appUrl, exportName: exportName ?? 'default', slots: slots.buffer, handlerOptions, trace, startEagerly: role === 'fresh' };
    const thread = new Worker(filename, {
      workerData: init,
      execArgv,
      env: env ?? { ...process.env },
      argv: argv ? [...argv] : [],
      resourceLimits,
    });
    const w: PoolWorker = { index, thread, threadId: thread.threadId, slots, inFlight: new Map(), role, ready: false, stopping: false, lastError: null };
    if (role === 'serving') {
      this.pool[index] = w;
      this.threadIds[index] = thread.threadId;
    }
    thread.on('message', (m: { type: string; id?: number; error?: { message: string; stack?: string }; url?: string; traced?: boolean; record?: TraceRecord }) => {
      if (m.type === 'ready') {
        w.ready = true;
        if (w.role === 'fresh') return this.freshReady();
        if (w.role !== 'serving') return;
        this.loadFailure = null;
        this.pump();
      } else if (m.type === 'done') {
        this.finished(w, m.id as number);
      } else if (m.type === 'load-error') {
        const error = m.error?.stack ?? m.error?.message;
        if (w.role === 'fresh') return this.reloadFailed(`worker ${index} could not load the new code: ${m.error?.message}`, m.error?.stack);
        if (w.role !== 'serving') return;
        this.loadFailure = `worker ${index} could not load the app: ${m.error?.message}`;
        this.report(error, 'load', index);
      } else if (m.type === 'app-error') {
        this.report(m.error?.stack ?? m.error?.message, 'app', index, m.traced === true, w.threadId);
      } else if (m.type === 'trace') {
        if (m.record) this.trace?.write(m.record);
      }
    });
    thread.on('error', (error) => {
      w.lastError = String((error as Error)?.stack ?? error);
      if (w.role === 'fresh') return; // its exit fails the reload, with this error
      this.report(error, 'crash', index, false, w.threadId);
    });
    thread.on('exit', (code) => this.exited(w, code));
    return w;
  }

  // ── dispatch ───────────────────────────────────────────────────────────────────────────────────────

  handle(ecb: Ecb): number {
    if (!(ecb instanceof NativeEcb)) {
      this.report(new IsapiError(ErrorCodes.NOT_SUPPORTED, 'ThreadPoolHandler hands ECB addresses to worker threads, so it needs native ECBs: use EmulatedHost (inject(..., { native: true })) or a real host'), 'app', -1);
      respondDirect(ecb, 500, 'Internal Server Error');
      return HSE_STATUS_PENDING;
    }
    this.start();
    if (this.unhealthy !== null) {
      // The reason is reported on an ECB that is still pending (issue: health), then cleared.
      try {
        ecb.reportUnhealthy(this.unhealthy);
      } catch {
        // a host that refuses still gets the request served
      }
      this.unhealthy = null;
    }
    if (this.terminating) {
      respondDirect(ecb, 503, 'Service Unavailable', 'Retry-After: 1\r\n');
      return HSE_STATUS_PENDING;
    }
    const request: Pending = { id: this.nextId++, ecb, slot: -1, worker: null, timer: null };
    const worker = this.leastBusy();
    if (worker) this.dispatch(request, worker);
    else if (this.queue.length < this.maxQueue) this.queue.push(request);
    else respondDirect(ecb, 503, 'Service Unavailable', 'Retry-After: 1\r\n');
    if (this.loadFailure && this.readyWorkers === 0) this.failQueued('Service Unavailable');
    return HSE_STATUS_PENDING;
  }

  private leastBusy(): PoolWorker | null {
    let best: PoolWorker | null = null;
    for (const w of this.pool) {
      if (!w || !w.ready || w.stopping || w.inFlight.size >= this.perWorker) continue;
      if (!best || w.inFlight.size < best.inFlight.size) best = w;
    }
    return best;
  }

  private dispatch(request: Pending, worker: PoolWorker): void {
    request.slot = worker.slots.acquire();
    request.worker = worker;
    worker.inFlight.set(request.id, request);
    const timeout = this.options.timeout ?? DEFAULT_TIMEOUT_MS;
    if (timeout > 0) {
      request.timer = setTimeout(() => this.stuck(worker, request), timeout + STUCK_GRACE_MS);
      request.timer.unref();
    }
    worker.thread.postMessage({ type: 'request', id: request.id, ecb: request.ecb.address, slot: request.slot });
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const worker = this.leastBusy();
      if (!worker) return;
      this.dispatch(this.queue.shift() as Pending, worker);
    }
  }

  private failQueued(reason: string): void {
    for (const request of this.queue.splice(0)) respondDirect(request.ecb, 503, reason, 'Retry-After: 5\r\n');
  }

  private finished(worker: PoolWorker, id: number): void {
    const request = worker.inFlight.get(id);
    if (!request) return;
    worker.inFlight.delete(id);
    if (request.timer) clearTimeout(request.timer);
    worker.slots.release(request.slot);
    this.pump();
    this.checkDrained();
  }

  private stuck(worker: PoolWorker, request: Pending): void {
    if (!worker.inFlight.has(request.id)) return;
    this.report(new Error(`request ${request.id} is still in flight long after its timeout: worker ${worker.index} is stuck; terminating it`), 'crash', worker.index, false, worker.threadId);
    void worker.thread.terminate();
  }

  // ── reload ─────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Load the app afresh in new workers and switch to them once they are all ready; the current workers keep serving
   * meanwhile, and finish what they hold afterwards. Resolves true once switched, false if the new code failed (the
   * current workers go on serving; the failure is reported). A call while a reload is loading makes that reload
   * start over, since its workers may have read the files before the latest change; both calls then settle together.
   */
  reload(): Promise<boolean> {
    return new Promise((resolve) => this.beginReload([], resolve));
  }

  /** Start a reload (or mark the one loading as overtaken); `settled` is called once it switched or failed. */
  private beginReload(changed: readonly string[], ...settled: ((ok: boolean) => void)[]): void {
    if (this.terminating) return void settled.forEach((s) => s(false));
    if (!this.started) {
      // Not started yet: the first workers will load what is on disk now anyway.
      this.start();
      return void settled.forEach((s) => s(true));
    }
    const current = this[kReload];
    if (current) {
      current.overtaken = true;
      current.changed = [...new Set([...current.changed, ...changed])];
      current.settled.push(...settled);
      return;
    }
    const fresh: PoolWorker[] = [];
    const timer = setTimeout(() => this.reloadFailed(`the new workers did not load and start the app within ${RELOAD_START_TIMEOUT_MS / 1000} s`), RELOAD_START_TIMEOUT_MS);
    timer.unref();
    this[kReload] = { fresh, changed: [...changed], started: Date.now(), overtaken: false, timer, settled };
    for (let i = 0; i < this.size; i++) fresh.push(this.spawn(i, 'fresh'));
  }

  /** A fresh worker is ready: once all are, switch (or start over if a later change overtook them). */
  private freshReady(): void {
    const reload = this[kReload];
    if (!reload || !reload.fresh.every((w) => w.ready)) return;
    clearTimeout(reload.timer);
    this[kReload] = null;
    if (reload.overtaken) {
      this.discard(reload.fresh);
      this.beginReload(reload.changed, ...reload.settled);
      return;
    }
    const previous = this.pool.filter((w): w is PoolWorker => w !== null);
    for (const w of reload.fresh) {
      w.role = 'serving';
      this.pool[w.index] = w;
      this.threadIds[w.index] = w.threadId;
    }
    this[kGeneration]++;
    this.loadFailure = null;
    let draining = 0;
    for (const w of previous) {
      draining += w.inFlight.size;
      this.retire(w);
    }
    // Requests that waited (every previous worker busy) go to the fresh workers now.
    this.pump();
    const ms = Date.now() - reload.started;
    this.trace?.write(
      makeRecord('info', `thread pool reloaded${changedList(reload.changed)}: generation ${this[kGeneration]} serving (${ms} ms); ${draining} request(s) finishing on the previous workers`, {
        kind: 'reload',
        handler: 'threadpool',
      }),
    );
    this.notifyReload({ ok: true, generation: this[kGeneration], changed: reload.changed, ms, draining });
    for (const s of reload.settled) s(true);
  }

  /**
   * The reload in progress failed: discard its workers, keep the current ones, report. `detail` is the worker's own
   * stack of the failure, kept as the reported error's stack.
   */
  private reloadFailed(reason: string, detail?: string): void {
    const reload = this[kReload];
    if (!reload) return;
    clearTimeout(reload.timer);
    this[kReload] = null;
    this.discard(reload.fresh);
    if (reload.overtaken && !this.terminating) {
      // A later change may be the fix: try again with it, and let the callers waiting on this attempt wait on that one.
      this.beginReload(reload.changed, ...reload.settled);
      return;
    }
    // Node 20 does not name the file in an ES module's SyntaxError; the changed files usually do.
    const failure = new Error(`reload failed${changedList(reload.changed)}; generation ${this[kGeneration]} keeps serving. ${reason}`);
    failure.stack = `Error: ${failure.message}${detail ? `\n${detail}` : ''}`;
    this.report(failure, 'reload', -1);
    this.notifyReload({ ok: false, generation: this[kGeneration], changed: reload.changed, ms: Date.now() - reload.started, draining: 0, error: failure });
    for (const s of reload.settled) s(false);
  }

  private notifyReload(event: ReloadEvent): void {
    try {
      this.options.onReload?.(event);
    } catch {
      // a failing listener must not break the pool
    }
  }

  /** Fresh workers that will never serve: stop them (they hold no request), or terminate one that does not stop. */
  private discard(workers: readonly PoolWorker[]): void {
    for (const w of workers) {
      if (w.role === 'discarded') continue;
      w.role = 'discarded';
      w.stopping = true;
      this[kRetiring].add(w);
      w.thread.postMessage({ type: 'stop' });
      setTimeout(() => void w.thread.terminate(), DISCARD_TIMEOUT_MS).unref();
    }
  }

  /** A worker replaced by a reload: no new requests; it finishes the ones it holds (up to drainTimeout) and exits. */
  private retire(w: PoolWorker): void {
    w.role = 'retiring';
    w.stopping = true;
    this[kRetiring].add(w);
    w.thread.postMessage({ type: 'stop' });
    const limit = this.options.drainTimeout ?? 30_000;
    setTimeout(() => {
      if (!this[kRetiring].has(w) || w.inFlight.size === 0) return;
      this.report(new Error(`a worker replaced by a reload still held ${w.inFlight.size} request(s) after drainTimeout (${limit} ms); terminating it`), 'reload', w.index, false, w.threadId);
      w.expired = true;
      void w.thread.terminate();
    }, limit).unref();
  }

  // ── crashes ────────────────────────────────────────────────────────────────────────────────────────

  private exited(worker: PoolWorker, code: number): void {
    if (worker.role === 'fresh') {
      // Died while loading the new code (process.exit at import, an uncaught error in its start-up, OOM): no request
      // was ever given to it, so nothing to recover; the reload fails and the serving workers stay.
      worker.role = 'discarded';
      const reason = `worker ${worker.index} exited with code ${code} while loading the new code`;
      this.reloadFailed(worker.lastError ? `${reason}: ${worker.lastError.split('\n', 1)[0]}` : reason, worker.lastError ?? undefined);
      return;
    }
    if (worker.role === 'retiring' || worker.role === 'discarded') {
      // Replaced by a reload (or never used): not a crash, never respawned. Requests it still held (drainTimeout,
      // or it died while draining) are finished as for a crash.
      this[kRetiring].delete(worker);
      const orphans = [...worker.inFlight.values()];
      worker.inFlight.clear();
      if (orphans.length > 0 && !worker.expired) {
        this.report(new Error(worker.lastError ?? `worker ${worker.index} exited with code ${code} while finishing its requests after a reload`), 'crash', worker.index, false, worker.threadId);
      }
      for (const request of orphans) this.recover(worker, request);
      this.checkDrained();
      return;
    }
    if (this.pool[worker.index] === worker) this.pool[worker.index] = null;
    const orphans = [...worker.inFlight.values()];
    worker.inFlight.clear();
    const expected = worker.stopping && orphans.length === 0;
    if (!expected) {
      const reason = worker.lastError ?? `worker ${worker.index} exited with code ${code}`;
      // process.exit() and terminate() raise no 'error' event: report them here so no crash goes unlogged.
      if (worker.lastError === null) this.report(new Error(reason), 'crash', worker.index, false, worker.threadId);
      this.crashed(reason, orphans);
    }
    for (const request of orphans) this.recover(worker, request);
    if (!this.terminating && !expected) {
      const recent = this.crashes.length;
      const delay = Math.min(100 * 2 ** Math.max(0, recent - 1), 10_000);
      setTimeout(() => {
        if (!this.terminating && this.pool[worker.index] === null) this.spawn(worker.index);
      }, delay).unref();
    }
    this.checkDrained();
  }

  private crashed(reason: string, orphans: Pending[]): void {
    const now = Date.now();
    const limit = this.options.crashLimit ?? { count: 5, windowMs: 60_000 };
    this.crashes.push(now);
    while (this.crashes.length > 0 && (this.crashes[0] as number) < now - limit.windowMs) this.crashes.shift();
    if (this.crashes.length < limit.count) return;
    const message = `isapi-http: ${this.crashes.length} worker crashes within ${Math.round(limit.windowMs / 1000)} s; last: ${reason.split('\n')[0]}`;
    this.crashes.length = 0;
    // IIS keeps the reason to itself (if it keeps it at all): say it where an operator looks, too.
    this.report(new Error(`reporting the worker process unhealthy to IIS (HSE_REQ_REPORT_UNHEALTHY): ${message}`), 'crash', -1);
    // Report on an ECB that is still pending: one of the orphans if any is not done, else the next request.
    for (const request of orphans) {
      const state = request.worker?.slots.read(request.slot) ?? 0;
      if ((state & SLOT_DONE) === 0 && !request.ecb.done) {
        try {
          request.ecb.reportUnhealthy(message);
          return;
        } catch {
          break;
        }
      }
    }
    this.unhealthy = message;
  }

  /** Finish a request whose worker died, from the main thread, exactly once. */
  private recover(worker: PoolWorker, request: Pending): void {
    if (request.timer) clearTimeout(request.timer);
    const state = worker.slots.read(request.slot);
    worker.slots.release(request.slot);
    // DONE was started by the worker: the session is over (or about to be); never touch the ECB again.
    if (state & SLOT_DONE) return;
    const ecb = request.ecb;
    const end = (): void => {
      if (ecb.done) return;
      try {
        if (state & SLOT_HEADERS) {
          ecb.closeConnection();
          ecb.doneWithSession(HSE_STATUS_ERROR);
        } else {
          respondDirect(ecb, 500, 'Internal Server Error');
        }
      } catch (error) {
        this.report(error, 'crash', worker.index);
        if (!ecb.done) ecb.doneWithSession(HSE_STATUS_ERROR);
      }
    };
    if ((state & SLOT_IO) === 0) return end();
    // An async operation of the dead worker is outstanding: redirect its completion to this thread, make the host
    // finish it (CLOSE_CONNECTION), and end the session only then (ISAPI.md §9).
    let ended = false;
    const once = (): void => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      if (!ecb.done) {
        try {
          ecb.doneWithSession(HSE_STATUS_ERROR);
        } catch (error) {
          this.report(error, 'crash', worker.index);
        }
      }
    };
    const timer = setTimeout(once, ADOPT_TIMEOUT_MS);
    try {
      ecb.adoptOutstandingIo(() => once());
      ecb.closeConnection();
    } catch (error) {
      this.report(error, 'crash', worker.index);
      once();
    }
  }

  // ── shutdown ───────────────────────────────────────────────────────────────────────────────────────

  private checkDrained(): void {
    if (this.drained && [...this.workers()].every((w) => w.inFlight.size === 0)) {
      const d = this.drained;
      this.drained = null;
      d();
    }
  }

  /**
   * Stop accepting (new and queued requests get 503), let requests in flight finish up to `drainTimeout`,
   * finish the rest as for a crash, then stop the workers. After it resolves, nothing calls into the host.
   */
  async terminate(): Promise<void> {
    this.terminating = true;
    // The watcher first: no reload may start while the pool stops (and no fs handle outlives the handler).
    const watcher = this[kWatcher];
    this[kWatcher] = null;
    const unwatched = watcher?.close().catch((error: unknown) => this.report(error, 'reload', -1));
    const reload = this[kReload];
    if (reload) {
      clearTimeout(reload.timer);
      this[kReload] = null;
      this.discard(reload.fresh);
      for (const s of reload.settled) s(false);
    }
    this.failQueued('Service Unavailable');
    if ([...this.workers()].some((w) => w.inFlight.size > 0)) {
      const limit = this.options.drainTimeout ?? 30_000;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, limit);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const exits = [...this.workers()].map(
      (w) =>
        new Promise<void>((resolve) => {
          w.stopping = true;
          w.thread.once('exit', () => resolve());
          if (w.inFlight.size > 0) void w.thread.terminate();
          else w.thread.postMessage({ type: 'stop' });
        }),
    );
    await Promise.all([...exits, unwatched]);
    this.trace?.off('capture', this.traceCapture);
  }
}
