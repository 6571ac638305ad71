/**
 * What the handlers use to trace: a `TraceTarget` takes records (the channel on the main thread, the forwarder in a
 * worker), and `tracedRequestOptions` wraps one request's `onError` and `logNote` so that
 * - an error of that request becomes an error record with its id, method, url and stack;
 * - the end of its session (Exchange calls logNote exactly then) becomes its summary record: status, duration.
 * The user's own onError and logNote still run, unchanged; the default lpszLogData note is kept as well.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { makeRecord, toTraceError, type HandlerKind, type TraceRecord } from './record.js';

export interface TraceTarget {
  /** Take one record. Never throws, never blocks. */
  write(record: TraceRecord): void;
}

/** The per-request options SimpleHandler passes to each Exchange (a subset of ExchangeOptions). */
export interface RequestHooks {
  readonly onError?: (error: unknown, req?: IncomingMessage) => void;
  readonly logNote?: (req: IncomingMessage, res: ServerResponse, elapsedMs: number) => string;
}

/** The note Exchange writes to lpszLogData when no logNote is given (kept identical). */
function defaultNote(elapsedMs: number): string {
  return `isapi-http ${elapsedMs.toFixed(1)}ms`;
}

export function requestRecord(req: IncomingMessage, res: ServerResponse, elapsedMs: number, requestId: string, handler: HandlerKind): TraceRecord {
  const status = res.headersSent ? res.statusCode : undefined;
  const aborted = !res.writableFinished;
  const ms = Math.round(elapsedMs * 10) / 10;
  const msg = `${req.method ?? '?'} ${req.url ?? ''} ${status ?? '-'} ${ms}ms${aborted ? ' (aborted)' : ''}`;
  return makeRecord(aborted || (status ?? 0) >= 500 ? 'warn' : 'info', msg, {
    source: 'request',
    requestId,
    method: req.method,
    url: req.url,
    status,
    ms,
    aborted: aborted || undefined,
    handler,
  });
}

export function requestErrorRecord(error: unknown, req: IncomingMessage | undefined, requestId: string, handler: HandlerKind): TraceRecord {
  const err = toTraceError(error);
  const msg = req ? `${req.method ?? '?'} ${req.url ?? ''} failed: ${err.message}` : err.message;
  return makeRecord('error', msg, { kind: 'app', requestId, method: req?.method, url: req?.url, handler, err });
}

/** `options` with onError and logNote wrapped to write this request's records into `target`. */
export function tracedRequestOptions<T extends RequestHooks>(target: TraceTarget, options: T, requestId: string, handler: HandlerKind = 'simple'): T {
  const onError = options.onError;
  const logNote = options.logNote;
  return {
    ...options,
    onError: (error: unknown, req?: IncomingMessage) => {
      try {
        target.write(requestErrorRecord(error, req, requestId, handler));
      } catch {
        // the trace never breaks a request
      }
      onError?.(error, req);
    },
    logNote: (req: IncomingMessage, res: ServerResponse, elapsedMs: number) => {
      try {
        target.write(requestRecord(req, res, elapsedMs, requestId, handler));
      } catch {
        // the trace never breaks a request
      }
      return logNote ? logNote(req, res, elapsedMs) : defaultNote(elapsedMs);
    },
  };
}

/**
 * ThreadPoolHandler's report kinds: an app error in a worker, a worker crash, the app failing to load at start, and
 * a reload that failed (the new code would not load or start; the previous workers keep serving) or a watcher error.
 */
export type PoolErrorKind = 'app' | 'crash' | 'load' | 'reload';

/** A ThreadPoolHandler report (its onError kinds) as a record. */
export function poolErrorRecord(error: unknown, kind: PoolErrorKind, workerIndex: number, worker?: number): TraceRecord {
  const err = toTraceError(error);
  const who = workerIndex < 0 ? 'thread pool' : `worker ${workerIndex}`;
  return makeRecord('error', `${who} ${kind}: ${err.message}`, {
    kind,
    handler: 'threadpool',
    workerIndex: workerIndex < 0 ? undefined : workerIndex,
    worker,
    err,
  });
}
