/**
 * SimpleHandler: runs the app on the thread that receives the requests (the main thread). Many requests are in
 * flight at once through async I/O; none of them blocks the thread, because every ECB read and write is async.
 */
import type { Ecb } from '../ecb/ecb.js';
import { HSE_STATUS_PENDING } from '../ecb/constants.js';
import { Exchange, type ExchangeOptions, type RequestListener } from '../http/exchange.js';
import type { IsapiHandler } from './handler.js';
import { withinRequest } from './host-mode.js';
import { respondDirect } from './respond.js';
import { IsapiError, ErrorCodes } from '../errors.js';
import { toRequestListener, type AppLike } from './to-request-listener.js';
import { nextRequestId, runInRequest } from '../trace/context.js';
import { tracedRequestOptions, type TraceTarget } from '../trace/request-trace.js';

export interface SimpleHandlerOptions extends ExchangeOptions {
  /** How long terminate() lets requests in flight finish before closing their connections. Default 30 s. */
  readonly drainTimeout?: number;
  /**
   * A trace channel (createTraceChannel) for this handler's diagnostics: each request's summary record (status,
   * duration) and error records, and the request id on console lines written while it runs. Default: none, or
   * host mode's channel (createExtension attaches it). The onError and logNote given here still run.
   */
  readonly trace?: TraceTarget;
}

export class SimpleHandler implements IsapiHandler {
  readonly servesOnThisThread = true;
  private readonly listener: RequestListener;
  private readonly options: SimpleHandlerOptions;
  private readonly active = new Set<Exchange>();
  private terminating = false;
  private drained: (() => void) | null = null;
  private trace: TraceTarget | null;

  constructor(app: AppLike, options: SimpleHandlerOptions = {}) {
    if (options !== null && typeof options === 'object' && (options as { watch?: unknown }).watch !== undefined && (options as { watch?: unknown }).watch !== false) {
      // It was handed the app object itself: no fresh copy of the code can be had on this thread (ESM modules cannot
      // be evicted from the loader's cache, and re-requiring CJS leaks the old instances and their handles).
      throw new IsapiError(
        ErrorCodes.RELOAD_NOT_SUPPORTED,
        'SimpleHandler cannot reload on change: it serves an app already imported on this thread. Use new ThreadPoolHandler(moduleUrl, { watch: true }), which loads fresh code in new worker threads.',
      );
    }
    // Detection (and its clear error for a value that is no app) happens here, once, not per request.
    this.listener = toRequestListener(app, { onError: options.onError });
    this.options = options;
    this.trace = options.trace ?? null;
  }

  /** Trace to `target` from the next request on, unless the options already named a trace. */
  attachTrace(target: TraceTarget): void {
    this.trace ??= target;
  }

  get inFlight(): number {
    return this.active.size;
  }

  handle(ecb: Ecb): number {
    void this.serve(ecb);
    return HSE_STATUS_PENDING;
  }

  /**
   * Serve one request; resolves when its session has ended (DONE_WITH_SESSION called, streams closed).
   * `requestId` names it in the trace (ThreadPoolHandler passes its own numbering); default: the next local id.
   */
  serve(ecb: Ecb, requestId?: string): Promise<void> {
    if (this.terminating) {
      respondDirect(ecb, 503, 'Service Unavailable', 'Retry-After: 1\r\n');
      return Promise.resolve();
    }
    const trace = this.trace;
    const id = trace ? (requestId ?? nextRequestId()) : '';
    const exchange = new Exchange(ecb, trace ? tracedRequestOptions(trace, this.options, id) : this.options);
    this.active.add(exchange);
    const settled = exchange.settled.then(() => {
      this.active.delete(exchange);
      if (this.active.size === 0 && this.drained) this.drained();
    });
    withinRequest(exchange, trace ? () => runInRequest(id, () => exchange.run(this.listener)) : () => exchange.run(this.listener));
    return settled;
  }

  /**
   * Stop accepting (new requests get 503) and resolve when the requests in flight have ended. Past `drainTimeout`
   * the rest have their connections closed (each still ends its session once, with HSE_STATUS_ERROR).
   */
  terminate(): Promise<void> {
    this.terminating = true;
    if (this.active.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        for (const exchange of this.active) exchange.socket.destroy(new Error('isapi-http: the extension is terminating'));
      }, this.options.drainTimeout ?? 30_000);
      this.drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
