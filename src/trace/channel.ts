/**
 * The trace channel (issue 7 item 1): where an extension's output and the library's diagnostics go when there is
 * no console, as inside w3wp.
 *
 *   record ─▶ level filter ─▶ ring (the last `ringSize` records, always)
 *                           └▶ one JSON line ─▶ each connected collector (bounded per collector; drops counted)
 *                                           └▶ the rotating file, when configured (bounded queue; drops counted)
 *
 * Collectors connect to a named pipe (Windows) or a Unix socket (elsewhere), get the ring, then follow live
 * (`runTraceCollector`, `isapi-http trace`). Nothing in `write` waits for a collector or the disk: a stalled
 * collector costs one length check per record, an absent one costs nothing, and no record is ever serialised
 * unless someone (a collector, the file) will receive it.
 *
 * No logging library is used: the heart of this is the ring and the per-collector fan-out with its drop policy,
 * which pino and its destinations do not provide (pino.multistream writes to every stream alike, sonic-boom is one
 * file descriptor). Node's own net and fs streams already give non-blocking writes with a measurable backlog
 * (`writableLength`), which is all the bounding needs, and pino's transports would add a thread to w3wp. Record
 * fields follow pino's names (`time`, `level`, `msg`, `err`), so the JSON lines read naturally to pino users.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket, Server } from 'node:net';
import { EventEmitter } from 'eventemitter3';
import { ErrorCodes, IsapiError, invalidArgument } from '../errors.js';
import { captureOutput, type CaptureOptions, type CaptureSink } from './capture.js';
import { CollectorLink } from './collector-link.js';
import { currentRequestId } from './context.js';
import { checkTraceName, defaultTraceName, traceEndpoint } from './endpoint.js';
import { RotatingFileSink, type TraceFileOptions } from './file-sink.js';
import { LEVEL_VALUE, levelValue, parseLevel, type TraceLevel } from './levels.js';
import { claimEndpoint, nameInUse, releaseEndpoint } from './listen.js';
import { PROTOCOL_VERSION, controlLine } from './protocol.js';
import { DEFAULT_MAX_TEXT, makeRecord, toTraceError, type TraceFields, type TraceRecord } from './record.js';
import { poolErrorRecord, type PoolErrorKind, type TraceTarget } from './request-trace.js';
import { Ring } from './ring.js';

export interface TraceChannelOptions {
  /** Keeps app pools apart: the pipe / socket is `isapi-http-<name>`. Default: APP_POOL_ID, else `default`. */
  readonly name?: string;
  /** Records kept for a collector that connects later. Default 1000. */
  readonly ringSize?: number;
  /** Records below this level are discarded at once. Default `debug` (everything). */
  readonly level?: TraceLevel;
  /** Also append every record to a file, rotated by size (a path, or the full options). Default: no file. */
  readonly file?: string | TraceFileOptions;
  /** Listen for collectors. Default true; false keeps only the ring and the file. */
  readonly listen?: boolean;
  /**
   * When another live channel has the name: `fail` rejects `ready` with ERR_ISAPI_TRACE_NAME_IN_USE (the default);
   * `retry` keeps trying every `retryMs` (host mode uses it: during an overlapped recycle the old w3wp still
   * holds the name, and the new one takes it over when the old one exits).
   */
  readonly whenInUse?: 'fail' | 'retry';
  /** Default 2000 ms. */
  readonly retryMs?: number;
  /** Bytes a collector may leave unread before its records are dropped (and counted). Default 1 MiB. */
  readonly maxCollectorBytes?: number;
  /** Collectors connected at once; more are refused. Default 8. */
  readonly maxCollectors?: number;
  /** Longest message and stack kept per record, in characters. Default 16384. */
  readonly maxTextLength?: number;
}

export interface TraceStats {
  /** Records accepted (past the level filter) since the channel was created. */
  readonly records: number;
  /** Records in the ring now. */
  readonly ring: number;
  /** Collectors connected now. */
  readonly collectors: number;
  /** Records dropped for slow collectors, all collectors together, since the channel was created. */
  readonly dropped: number;
  /** Lines the file sink dropped (disk too slow, or the file not writable). */
  readonly fileDropped: number;
  readonly listening: boolean;
}

interface ChannelEvents {
  /** The channel started (true) or stopped (false) capturing this thread's console and stdout/stderr. */
  capture: [capturing: boolean];
  close: [];
}

function serialise(record: TraceRecord): string {
  try {
    return `${JSON.stringify(record)}\n`;
  } catch {
    return `${JSON.stringify({ time: record.time, level: record.level, msg: String(record.msg), source: record.source })}\n`;
  }
}

/** Channels of this process that listen, by endpoint path: a second one with the same name is refused at once. */
const live = new Map<string, TraceChannel>();

/** The live channel of this process at `path`, if any. */
export function liveTraceChannel(path: string): TraceChannel | undefined {
  return live.get(path);
}

export class TraceChannel extends EventEmitter<ChannelEvents> implements TraceTarget {
  readonly name: string;
  /** The named pipe or Unix socket collectors connect to. */
  readonly path: string;
  /**
   * Resolves once collectors can connect (at once when `listen` is false). Rejects with
   * ERR_ISAPI_TRACE_NAME_IN_USE when another live channel has the name (unless `whenInUse` is `retry`).
   * The ring, the file and capture work meanwhile, and whatever happens here.
   */
  readonly ready: Promise<void>;

  private readonly ring: Ring<TraceRecord>;
  private readonly minLevel: number;
  private readonly maxText: number;
  private readonly maxCollectorBytes: number;
  private readonly maxCollectors: number;
  private readonly links = new Set<CollectorLink>();
  private readonly file: RotatingFileSink | null;
  private server: Server | null = null;
  private captures = 0;
  private releaseOutput: (() => void) | null = null;
  private accepted = 0;
  /** Records dropped for collectors that have disconnected since. */
  private droppedGone = 0;
  private closed = false;
  private closing: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(options: TraceChannelOptions = {}) {
    super();
    const int = (name: string, value: number | undefined, fallback: number, min: number): number => {
      const v = value ?? fallback;
      if (!Number.isInteger(v) || v < min) throw invalidArgument(`trace channel option ${name} must be an integer ≥ ${min}, got ${String(value)}`);
      return v;
    };
    this.name = checkTraceName(options.name ?? defaultTraceName());
    this.path = traceEndpoint(this.name);
    this.ring = new Ring(int('ringSize', options.ringSize, 1000, 1));
    this.minLevel = LEVEL_VALUE[parseLevel(options.level ?? 'debug')];
    this.maxText = int('maxTextLength', options.maxTextLength, DEFAULT_MAX_TEXT, 64);
    this.maxCollectorBytes = int('maxCollectorBytes', options.maxCollectorBytes, 2 ** 20, 0);
    this.maxCollectors = int('maxCollectors', options.maxCollectors, 8, 1);
    const retryMs = int('retryMs', options.retryMs, 2000, 10);
    const whenInUse = options.whenInUse ?? 'fail';
    if (whenInUse !== 'fail' && whenInUse !== 'retry') throw invalidArgument(`trace channel option whenInUse must be "fail" or "retry", got ${String(whenInUse)}`);
    const file = typeof options.file === 'string' ? { path: options.file } : options.file;
    this.file = file ? new RotatingFileSink(file, (message) => this.log('warn', message, { source: 'channel' })) : null;

    if (options.listen === false) {
      this.ready = Promise.resolve();
      return;
    }
    if (live.has(this.path)) throw nameInUse(this.name, this.path, 'another channel of this process has it');
    live.set(this.path, this);
    this.ready = this.listen(whenInUse, retryMs);
    // `ready` is for those who wait on it; nobody else must see an unhandled rejection.
    this.ready.catch(() => undefined);
  }

  // ── writing ──────────────────────────────────────────────────────────────────────────────────────

  /** Take one record (from this thread, or forwarded by a worker). Never throws, never blocks. */
  write(record: TraceRecord): void {
    if (this.closed || levelValue(record.level) < this.minLevel) return;
    this.accepted++;
    this.ring.push(record);
    if (this.links.size === 0 && this.file === null) return;
    // Serialised once, and only if someone takes it: a collector that has no room costs no JSON.stringify.
    let line: string | null = null;
    for (const link of this.links) {
      if (!link.admit()) continue;
      line ??= serialise(record);
      link.send(line);
    }
    if (this.file) this.file.write(line ?? serialise(record));
  }

  /** Write a record at `level`; the current request's id (if any) is added. */
  log(level: TraceLevel, msg: string, fields?: TraceFields): void {
    if (LEVEL_VALUE[level] < this.minLevel) return;
    this.write(makeRecord(level, msg, { requestId: currentRequestId(), ...fields }, this.maxText));
  }

  debug(msg: string, fields?: TraceFields): void {
    this.log('debug', msg, fields);
  }

  info(msg: string, fields?: TraceFields): void {
    this.log('info', msg, fields);
  }

  warn(msg: string, fields?: TraceFields): void {
    this.log('warn', msg, fields);
  }

  /** An error record: a string is the message; anything else is the error (its stack kept). */
  error(error: unknown, fields?: TraceFields): void {
    if (typeof error === 'string') return this.log('error', error, fields);
    const err = toTraceError(error, this.maxText);
    this.log('error', err.message, { err, ...fields });
  }

  /** An `onError` for SimpleHandler / createServer / ExchangeOptions: each error becomes an error record. */
  readonly onError = (error: unknown, req?: IncomingMessage): void => {
    const err = toTraceError(error, this.maxText);
    const msg = req ? `${req.method ?? '?'} ${req.url ?? ''} failed: ${err.message}` : err.message;
    this.log('error', msg, { kind: 'app', method: req?.method, url: req?.url, err });
  };

  /** An `onError` for ThreadPoolHandler (its kinds app / crash / load become the record's `kind`). */
  readonly onPoolError = (error: unknown, context: { readonly kind: PoolErrorKind; readonly worker: number }): void => {
    this.write(poolErrorRecord(error, context.kind, context.worker));
  };

  // ── capture ──────────────────────────────────────────────────────────────────────────────────────

  private readonly captureSink: CaptureSink = (level, source, text) => {
    if (LEVEL_VALUE[level] < this.minLevel) return;
    this.write(makeRecord(level, text, { source, requestId: currentRequestId() }, this.maxText));
  };

  /**
   * Redirect this thread's console and process.stdout / stderr into the channel (a process-wide side effect:
   * host mode does it for you; nothing else does unless asked). Counted: each capture() needs its release().
   */
  capture(options: CaptureOptions = {}): this {
    if (this.closed) return this;
    if (++this.captures === 1) {
      this.releaseOutput = captureOutput(this.captureSink, options);
      this.emit('capture', true);
    }
    return this;
  }

  /** Undo one capture(); the last one restores the original console and streams exactly. */
  release(): void {
    if (this.captures === 0 || --this.captures > 0) return;
    this.releaseOutput?.();
    this.releaseOutput = null;
    this.emit('capture', false);
  }

  get capturing(): boolean {
    return this.captures > 0;
  }

  // ── reading ──────────────────────────────────────────────────────────────────────────────────────

  /** The ring's records, oldest first. */
  recent(): TraceRecord[] {
    return this.ring.toArray();
  }

  stats(): TraceStats {
    return {
      records: this.accepted,
      ring: this.ring.size,
      collectors: this.links.size,
      dropped: [...this.links].reduce((n, l) => n + l.dropped, this.droppedGone),
      fileDropped: this.file?.dropped ?? 0,
      listening: this.server !== null,
    };
  }

  /** A channel serialises as its identity (inject() keys its extensions on JSON.stringify(options)). */
  toJSON(): { name: string; path: string } {
    return { name: this.name, path: this.path };
  }

  /** Resolves once the file sink has written what it was given so far (at once without a file). */
  flush(): Promise<void> {
    return this.file?.flush() ?? Promise.resolve();
  }

  // ── the endpoint ─────────────────────────────────────────────────────────────────────────────────

  private async listen(whenInUse: 'fail' | 'retry', retryMs: number): Promise<void> {
    let warned = false;
    for (;;) {
      try {
        const server = await claimEndpoint(this.name, this.path, (socket) => this.accept(socket));
        if (this.closed) return void (await releaseEndpoint(server));
        this.server = server;
        return;
      } catch (error) {
        if (this.closed) return;
        const inUse = error instanceof IsapiError && error.code === ErrorCodes.TRACE_NAME_IN_USE;
        if (inUse && whenInUse === 'retry') {
          if (!warned) this.log('warn', `${(error as Error).message} Retrying every ${retryMs} ms.`, { source: 'channel' });
          warned = true;
          await new Promise<void>((resolve) => {
            this.wake = resolve;
            setTimeout(resolve, retryMs).unref();
          });
          this.wake = null;
          continue;
        }
        live.delete(this.path);
        this.log('error', `trace: collectors cannot connect: ${(error as Error).message}`, { source: 'channel', err: toTraceError(error) });
        throw error;
      }
    }
  }

  private accept(socket: Socket): void {
    if (this.closed || this.links.size >= this.maxCollectors) {
      socket.on('error', () => undefined);
      socket.end(controlLine({ $: 'refused', reason: this.closed ? 'the channel is closing' : `${this.maxCollectors} collectors are connected already` }));
      return;
    }
    const link = new CollectorLink(socket, this.maxCollectorBytes, (l) => {
      if (this.links.delete(l)) this.droppedGone += l.dropped;
    });
    const ring = this.ring.toArray();
    const lines = [controlLine({ $: 'hello', v: PROTOCOL_VERSION, name: this.name, pid: process.pid, ring: ring.length })];
    for (const record of ring) lines.push(`${JSON.stringify(record)}\n`);
    link.sendAll(lines.join(''));
    this.links.add(link);
  }

  /** Stop: release the capture, disconnect collectors, stop listening, and flush and close the file. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (this.captures > 0) {
      this.captures = 1;
      this.release();
    }
    this.closed = true;
    if (live.get(this.path) === this) live.delete(this.path);
    this.wake?.();
    // What a collector has not read yet gets a moment to go out; a stalled collector is cut off.
    for (const link of this.links) {
      this.droppedGone += link.dropped;
      link.end();
    }
    this.links.clear();
    if (this.server) await releaseEndpoint(this.server);
    this.server = null;
    await this.file?.close();
    this.emit('close');
  }
}

/** A trace channel (see TraceChannel): `createTraceChannel({ name, ringSize, file })`. */
export function createTraceChannel(options: TraceChannelOptions = {}): TraceChannel {
  return new TraceChannel(options);
}
