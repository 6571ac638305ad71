/**
 * The collector: connects to a trace channel, prints its ring, then follows live records until the channel closes
 * or `signal` aborts. It is what `isapi-http trace [name] [--json] [--level L] [--request ID]` runs:
 *
 *   name        the channel's name (default: APP_POOL_ID, else `default`), i.e. the app pool's
 *   --json      print each record as the raw JSON line the channel sent (for jq, for files)
 *   --level L   only records at level L or above (debug, info, warn, error, fatal)
 *   --request ID  only the records of that request (its console lines included)
 *   --no-follow print the ring and stop (follow: false)
 *
 * Filters run here, not in the channel, so what a collector asks for never costs the served process anything.
 * The channel's own notices (records dropped because this collector read too slowly) always print.
 * If the output cannot keep up (a pipe into a pager), reading pauses, and the channel drops for this collector
 * and says so, instead of anything growing without bound.
 */
import { createConnection } from 'node:net';
import { ErrorCodes, IsapiError } from '../errors.js';
import { checkTraceName, defaultTraceName, traceEndpoint } from './endpoint.js';
import { formatRecord } from './format.js';
import { LEVEL_VALUE, levelValue, parseLevel, type TraceLevel } from './levels.js';
import type { ControlLine, HelloLine } from './protocol.js';
import type { TraceRecord } from './record.js';

export interface TraceCollectorOptions {
  /** The channel's name. Default: APP_POOL_ID (made safe), else `default`. */
  readonly name?: string;
  /** Connect to this pipe / socket path instead of the name's. */
  readonly path?: string;
  /** Print raw JSON lines instead of formatted text. */
  readonly json?: boolean;
  /** Minimum level printed. */
  readonly level?: TraceLevel | string;
  /** Print only the records of this request. */
  readonly requestId?: string;
  /** Keep printing live records after the ring. Default true. */
  readonly follow?: boolean;
  /** Where lines go: a stream (default process.stdout) or a function given each line without its newline. */
  readonly output?: NodeJS.WritableStream | ((line: string) => void);
  /** Stop following. */
  readonly signal?: AbortSignal;
}

export interface TraceCollectorResult {
  /** Why it stopped: the ring was printed (follow: false), the channel closed, or `signal` aborted. */
  readonly end: 'ring' | 'closed' | 'aborted';
  /** Records received and records printed (past the filters). */
  readonly received: number;
  readonly printed: number;
  /** Records the channel dropped for this collector (from its notices). */
  readonly dropped: number;
  /** The channel's hello: its name and process id. */
  readonly channel: { readonly name: string; readonly pid: number } | null;
}

interface Writer {
  write(line: string): boolean;
  onDrain(resume: () => void): void;
}

function writerFor(output: NodeJS.WritableStream | ((line: string) => void)): Writer {
  if (typeof output === 'function') return { write: (line) => (output(line), true), onDrain: (resume) => resume() };
  return { write: (line) => output.write(`${line}\n`), onDrain: (resume) => void output.once('drain', resume) };
}

function unavailable(path: string, detail: string, cause?: unknown): IsapiError {
  return new IsapiError(ErrorCodes.TRACE_UNAVAILABLE, `cannot attach to the trace channel at ${path}: ${detail}`, { cause });
}

/** Connect, print the ring, follow. Rejects (ERR_ISAPI_TRACE_UNAVAILABLE) when no channel can be attached to. */
export async function runTraceCollector(options: TraceCollectorOptions = {}): Promise<TraceCollectorResult> {
  const path = options.path ?? traceEndpoint(checkTraceName(options.name ?? defaultTraceName()));
  const minLevel = options.level === undefined ? 0 : LEVEL_VALUE[parseLevel(options.level)];
  const follow = options.follow !== false;
  const writer = writerFor(options.output ?? process.stdout);
  const signal = options.signal;

  return new Promise((resolve, reject) => {
    let hello: HelloLine | null = null;
    let ringLeft = 0;
    let received = 0;
    let printed = 0;
    let dropped = 0;
    let settled = false;
    let pending = '';

    const socket = createConnection({ path });
    socket.setEncoding('utf8');

    const cleanup = (): void => {
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
    };
    const finish = (end: TraceCollectorResult['end']): void => {
      if (settled) return;
      cleanup();
      resolve({ end, received, printed, dropped, channel: hello ? { name: hello.name, pid: hello.pid } : null });
    };
    const fail = (error: IsapiError): void => {
      if (settled) return;
      cleanup();
      reject(error);
    };
    const onAbort = (): void => finish('aborted');
    if (signal?.aborted) return finish('aborted');
    signal?.addEventListener('abort', onAbort, { once: true });

    const passes = (record: TraceRecord): boolean => {
      if (record.source === 'channel') return true;
      if (levelValue(record.level) < minLevel) return false;
      return options.requestId === undefined || record.requestId === options.requestId;
    };

    const onLine = (line: string): void => {
      if (line.length === 0) return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        return; // not ours; skip it
      }
      if (value === null || typeof value !== 'object') return;
      const control = value as Partial<ControlLine>;
      if (control.$ === 'hello') {
        hello = control as HelloLine;
        ringLeft = hello.ring;
        if (!follow && ringLeft === 0) finish('ring');
        return;
      }
      if (control.$ === 'refused') return fail(unavailable(path, `the channel refused this collector (${(control as { reason?: string }).reason ?? 'no reason given'})`));
      if (control.$ !== undefined) return;
      const record = value as TraceRecord;
      received++;
      if (record.source === 'channel' && typeof record.dropped === 'number') dropped += record.dropped;
      if (passes(record)) {
        printed++;
        if (!writer.write(options.json ? line : formatRecord(record))) {
          socket.pause();
          writer.onDrain(() => socket.resume());
        }
      }
      if (ringLeft > 0 && --ringLeft === 0 && !follow) finish('ring');
    };

    socket.on('data', (chunk: string) => {
      pending += chunk;
      let start = 0;
      for (let nl = pending.indexOf('\n'); nl !== -1 && !settled; nl = pending.indexOf('\n', start)) {
        onLine(pending.slice(start, nl));
        start = nl + 1;
      }
      pending = pending.slice(start);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (hello) return finish('closed');
      const missing = error.code === 'ENOENT' || error.code === 'ECONNREFUSED';
      fail(
        unavailable(
          path,
          missing
            ? 'no channel is listening there. Is the extension running in host mode (or did it create a channel with that name)? Check the name: it is the app pool\'s by default'
            : `${error.code ?? ''} ${error.message}`.trim(),
          error,
        ),
      );
    });
    socket.on('close', () => {
      if (hello) finish('closed');
      else fail(unavailable(path, 'the channel closed the connection before it said hello'));
    });
  });
}
