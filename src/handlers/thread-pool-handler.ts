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
import type { TraceRecord } from '../trace/record.js';
import { poolErrorRecord } from '../trace/request-trace.js';

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
  /** Where the pool reports app errors, worker crashes and start-up failures. Default: console.error. */
  readonly onError?: (error: unknown, context: { readonly kind: 'app' | 'crash' | 'load'; readonly worker: number }) => void;
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

interface PoolWorker {
  readonly index: number;
  readonly thread: Worker;
  readonly slots: SlotTable;
  readonly inFlight: Map<number, Pending>;
  ready: boolean;
  stopping: boolean;
  lastError: string | null;
}

/** Grace past the per-request timeout before the main thread decides a worker is stuck. */
const STUCK_GRACE_MS = 5000;
/** How long the main thread waits for an orphaned async operation to complete after CLOSE_CONNECTION. */
const ADOPT_TIMEOUT_MS = 5000;

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
    this.pool = new Array<PoolWorker | null>(this.size).fill(null);
    if (options.trace) this.attachTrace(options.trace);
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
    for (const w of this.pool) w?.thread.postMessage({ type: 'trace', capture });
  };

  get inFlight(): number {
    let n = this.queue.length;
    for (const w of this.pool) n += w?.inFlight.size ?? 0;
    return n;
  }

  /** Workers that have loaded the app and take requests. */
  get readyWorkers(): number {
    return this.pool.filter((w) => w?.ready).length;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    for (let i = 0; i < this.size; i++) this.spawn(i);
  }

  /** Resolves once every worker has loaded the app (or rejects with the first start-up failure). */
  async ready(): Promise<void> {
    this.start();
    while (this.readyWorkers < this.size) {
      if (this.loadFailure) throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, this.loadFailure);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private report(error: unknown, kind: 'app' | 'crash' | 'load', worker: number, traced = false): void {
    // `traced`: the worker already wrote this error to the trace, with its request's id.
    if (this.trace && !traced) this.trace.write(poolErrorRecord(error, kind, worker, this.threadIds[worker]));
    if (this.trace && !this.options.onError) return;
    try {
      (this.options.onError ?? ((e: unknown, c: { kind: string; worker: number }) => console.error(`isapi-http: worker ${c.worker} ${c.kind}:`, e)))(error, { kind, worker });
    } catch {
      // a failing logger must not break the pool
    }
  }

  private spawn(index: number): void {
    const slots = new SlotTable(this.perWorker);
    const { filename, execArgv } = workerFile('worker');
    const { workers: _w, maxQueue: _q, maxInFlightPerWorker: _m, export: exportName, env, argv, resourceLimits, crashLimit: _c, drainTimeout: _d, onError: _e, trace: _t, ...handlerOptions } = this.options;
    const trace = this.trace ? { capture: this.trace.capturing } : undefined;
    const init: WorkerInit = { appUrl: this.appUrl, exportName: exportName ?? 'default', slots: slots.buffer, handlerOptions, trace };
    const thread = new Worker(filename, {
      workerData: init,
      execArgv,
      env: env ?? { ...process.env },
      argv: argv ? [...argv] : [],
      resourceLimits,
    });
    const w: PoolWorker = { index, thread, slots, inFlight: new Map(), ready: false, stopping: false, lastError: null };
    this.pool[index] = w;
    this.threadIds[index] = thread.threadId;
    thread.on('message', (m: { type: string; id?: number; error?: { message: string; stack?: string }; url?: string; traced?: boolean; record?: TraceRecord }) => {
      if (m.type === 'ready') {
        w.ready = true;
        this.loadFailure = null;
        this.pump();
      } else if (m.type === 'done') {
        this.finished(w, m.id as number);
      } else if (m.type === 'load-error') {
        this.loadFailure = `worker ${index} could not load the app: ${m.error?.message}`;
        this.report(m.error?.stack ?? m.error?.message, 'load', index);
      } else if (m.type === 'app-error') {
        this.report(m.error?.stack ?? m.error?.message, 'app', index, m.traced === true);
      } else if (m.type === 'trace') {
        if (m.record) this.trace?.write(m.record);
      }
    });
    thread.on('error', (error) => {
      w.lastError = String((error as Error)?.stack ?? error);
      this.report(error, 'crash', index);
    });
    thread.on('exit', (code) => this.exited(w, code));
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
    this.report(new Error(`request ${request.id} is still in flight long after its timeout: worker ${worker.index} is stuck; terminating it`), 'crash', worker.index);
    void worker.thread.terminate();
  }

  // ── crashes ────────────────────────────────────────────────────────────────────────────────────────

  private exited(worker: PoolWorker, code: number): void {
    if (this.pool[worker.index] === worker) this.pool[worker.index] = null;
    const orphans = [...worker.inFlight.values()];
    worker.inFlight.clear();
    const expected = worker.stopping && orphans.length === 0;
    if (!expected) {
      const reason = worker.lastError ?? `worker ${worker.index} exited with code ${code}`;
      // process.exit() and terminate() raise no 'error' event: report them here so no crash goes unlogged.
      if (worker.lastError === null) this.report(new Error(reason), 'crash', worker.index);
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
    if (this.drained && this.pool.every((w) => !w || w.inFlight.size === 0)) {
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
    this.failQueued('Service Unavailable');
    if (this.pool.some((w) => w && w.inFlight.size > 0)) {
      const limit = this.options.drainTimeout ?? 30_000;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, limit);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const exits = this.pool.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (!w) return resolve();
          w.stopping = true;
          w.thread.once('exit', () => resolve());
          if (w.inFlight.size > 0) void w.thread.terminate();
          else w.thread.postMessage({ type: 'stop' });
        }),
    );
    await Promise.all(exits);
    this.trace?.off('capture', this.traceCapture);
  }
}
