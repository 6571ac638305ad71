/**
 * One trace record: what the channel keeps in its ring, streams to collectors as one JSON line, and writes to its
 * file. Field names follow pino's conventions where they overlap (`time` in epoch ms, `level`, `msg`, `err`).
 * Records are plain data (workers send them through postMessage) and are never changed once written.
 */
import { threadId } from 'node:worker_threads';
import type { TraceLevel } from './levels.js';

/** Where the text came from. */
export type TraceSource =
  | 'console' // console.log / info / debug / warn / error / trace / dir, while captured
  | 'stdout' // a direct process.stdout.write, while captured
  | 'stderr' // a direct process.stderr.write, while captured
  | 'request' // the summary of one request, written when its session ends
  | 'library' // the library's own diagnostics: app errors, worker crashes, contained uncaught errors
  | 'channel'; // the channel about itself (records dropped for a slow collector, ...)

export type HandlerKind = 'simple' | 'threadpool';

export interface TraceError {
  readonly name?: string;
  readonly message: string;
  readonly stack?: string;
  readonly code?: string;
}

export interface TraceRecord {
  /** Epoch milliseconds. */
  readonly time: number;
  readonly level: TraceLevel;
  readonly msg: string;
  readonly source: TraceSource;
  /** The request the record belongs to, when known (console lines written while a request runs included). */
  readonly requestId?: string;
  readonly method?: string;
  readonly url?: string;
  readonly status?: number;
  /** Request duration in milliseconds, 0.1 ms resolution. */
  readonly ms?: number;
  /** True when the response did not finish normally (an error after the head, a client abort, a timeout). */
  readonly aborted?: boolean;
  readonly handler?: HandlerKind;
  /** The thread that wrote the record (worker_threads threadId; 0 is the main thread). */
  readonly worker?: number;
  /** ThreadPoolHandler's index of that worker (stable across respawns, unlike the thread id). */
  readonly workerIndex?: number;
  /** For diagnostics: 'app' | 'crash' | 'load' | 'reload' (ThreadPoolHandler's kinds), 'uncaught', 'extension', 'exit'. */
  readonly kind?: string;
  readonly err?: TraceError;
  /** For the channel's drop notices: how many records this collector missed. */
  readonly dropped?: number;
}

/** Longest `msg` and `err.stack` kept (characters). Bounds the ring's memory: ringSize × this, at most. */
export const DEFAULT_MAX_TEXT = 16 * 1024;

export function clip(text: string, max = DEFAULT_MAX_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max)}… [${text.length - max} more characters]`;
}

/** Any thrown value as plain data. A string that looks like a stack (what workers send) keeps it as the stack. */
export function toTraceError(error: unknown, max = DEFAULT_MAX_TEXT): TraceError {
  if (typeof error === 'string') {
    const firstLine = error.split('\n', 1)[0] as string;
    return /\n\s+at /.test(error) ? { message: clip(firstLine, max), stack: clip(error, max) } : { message: clip(error, max) };
  }
  if (error !== null && typeof error === 'object') {
    const e = error as { name?: unknown; message?: unknown; stack?: unknown; code?: unknown };
    return {
      name: typeof e.name === 'string' ? e.name : undefined,
      message: clip(typeof e.message === 'string' ? e.message : safeString(error), max),
      stack: typeof e.stack === 'string' ? clip(e.stack, max) : undefined,
      code: typeof e.code === 'string' ? e.code : undefined,
    };
  }
  return { message: clip(safeString(error), max) };
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return '[unprintable value]';
  }
}

/** Fields a caller may add to a record built by `makeRecord`. */
export type TraceFields = Partial<Omit<TraceRecord, 'time' | 'level' | 'msg'>>;

/** A record stamped with the time and this thread's id; `fields` may override the source and thread. */
export function makeRecord(level: TraceLevel, msg: string, fields?: TraceFields, max = DEFAULT_MAX_TEXT): TraceRecord {
  return { time: Date.now(), level, msg: clip(msg, max), source: 'library', worker: threadId, ...fields };
}
