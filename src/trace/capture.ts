/**
 * Redirecting this thread's console and process.stdout / process.stderr into a trace sink. Inside w3wp there is no
 * console: without this, everything an app prints is lost (anchors.md B6), and iisnode's answer, opening and
 * closing a file per console.log, cost a synchronous write each time.
 *
 * This is a process-wide (per-thread) side effect, so it is reference-counted and fully undone: `captureOutput`
 * returns a release function, and the originals come back, identical, when the last capture is released. Nested
 * captures stack: output goes to the most recent one still held.
 *
 * - console.log / info / dir → info, console.debug → debug, console.warn → warn, console.error → error,
 *   console.trace → debug (with its stack); one call is one record, however many lines it spans.
 * - Direct writes to process.stdout → info, to process.stderr → warn (stderr carries warnings and debug output as
 *   often as errors; console.error itself is mapped to error). They are cut into records at line ends; a partial
 *   line waits up to 50 ms for its end. Other console methods (table, count, time, ...) reach the sink this way.
 */
import { format, inspect, type InspectOptions } from 'node:util';
import type { TraceLevel } from './levels.js';

export type CaptureSource = 'console' | 'stdout' | 'stderr';
export type CaptureSink = (level: TraceLevel, source: CaptureSource, text: string) => void;

export interface CaptureOptions {
  /** Also pass everything to the original console and streams. Default false (in w3wp they lead nowhere). */
  readonly tee?: boolean;
}

interface Owner {
  readonly sink: CaptureSink;
  readonly tee: boolean;
}

type ConsoleMethod = 'log' | 'info' | 'debug' | 'warn' | 'error' | 'trace' | 'dir';
const METHODS: readonly ConsoleMethod[] = ['log', 'info', 'debug', 'warn', 'error', 'trace', 'dir'];
const METHOD_LEVEL: Record<ConsoleMethod, TraceLevel> = { log: 'info', info: 'info', debug: 'debug', warn: 'warn', error: 'error', trace: 'debug', dir: 'info' };
/** A partial line longer than this is written without waiting for its end. */
const MAX_PARTIAL = 16 * 1024;
const PARTIAL_WAIT_MS = 50;

type Write = NodeJS.WriteStream['write'];

/** Undo functions for what install() replaced, newest last. */
let undo: (() => void)[] | null = null;

/** Replace `obj[key]`; the undo puts back exactly what was there: the same own property, or none (a method inherited
 * from a prototype, as jest's console and the stdio streams' `write` are, is left to its prototype again). */
function replace<T extends object, K extends keyof T>(obj: T, key: K, value: T[K]): () => void {
  const own = Object.getOwnPropertyDescriptor(obj, key);
  obj[key] = value;
  return () => {
    if (own) Object.defineProperty(obj, key, own);
    else delete obj[key];
  };
}

const owners: Owner[] = [];
/** Set while the sink runs: a sink that itself prints must not loop back into the capture. */
let inSink = false;
/** Set while a teed console call runs the original, whose own stream write must not be captured a second time. */
let passingThrough = false;

function deliver(level: TraceLevel, source: CaptureSource, text: string): void {
  const owner = owners[owners.length - 1];
  if (!owner || inSink) return;
  inSink = true;
  try {
    owner.sink(level, source, text);
  } catch {
    // A failing sink must not make console.log throw in the app.
  } finally {
    inSink = false;
  }
}

function teeing(): boolean {
  return owners[owners.length - 1]?.tee === true;
}

class LineAssembler {
  private pending = '';
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly source: 'stdout' | 'stderr',
    private readonly level: TraceLevel,
  ) {}

  push(text: string): void {
    const text2 = this.pending + text;
    const end = text2.lastIndexOf('\n');
    if (end === -1) {
      this.pending = text2;
      if (this.pending.length > MAX_PARTIAL) return this.flush();
      this.timer ??= setTimeout(() => this.flush(), PARTIAL_WAIT_MS).unref();
      return;
    }
    this.pending = text2.slice(end + 1);
    const complete = text2.slice(0, text2[end - 1] === '\r' ? end - 1 : end);
    if (complete.length > 0) deliver(this.level, this.source, complete);
    if (this.pending.length === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const text = this.pending;
    this.pending = '';
    if (text.length > 0) deliver(this.level, this.source, text);
  }
}

let stdoutLines: LineAssembler | null = null;
let stderrLines: LineAssembler | null = null;

function chunkText(chunk: unknown, encoding: unknown): string {
  if (typeof chunk === 'string') return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString(typeof encoding === 'string' && Buffer.isEncoding(encoding) ? encoding : 'utf8');
  return String(chunk);
}

function patchedWrite(original: Write, stream: NodeJS.WriteStream, lines: () => LineAssembler | null): Write {
  return function write(this: unknown, chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    const cb = typeof encoding === 'function' ? encoding : callback;
    try {
      if (!passingThrough) lines()?.push(chunkText(chunk, encoding));
    } catch {
      // never let a write throw because of the trace
    }
    if (teeing()) return (original as (...a: unknown[]) => boolean).call(stream, chunk, encoding, callback);
    if (typeof cb === 'function') process.nextTick(cb as () => void);
    return true;
  } as Write;
}

function install(): void {
  const target = console as unknown as Record<ConsoleMethod, (...args: unknown[]) => void>;
  const originals = {} as Record<ConsoleMethod, (...args: unknown[]) => void>;
  for (const m of METHODS) originals[m] = target[m];
  const stdoutWrite = process.stdout.write;
  const stderrWrite = process.stderr.write;
  stdoutLines = new LineAssembler('stdout', 'info');
  stderrLines = new LineAssembler('stderr', 'warn');
  undo = [];
  for (const m of METHODS) {
    const level = METHOD_LEVEL[m];
    const captured = function captured(...args: unknown[]): void {
      let text: string;
      try {
        if (m === 'dir') text = inspect(args[0], { customInspect: false, ...(args[1] as InspectOptions | undefined) });
        else if (m === 'trace') text = `Trace: ${format(...args)}\n${(new Error().stack ?? '').split('\n').slice(2).join('\n')}`;
        else text = format(...args);
      } catch {
        text = '[console arguments could not be formatted]';
      }
      deliver(level, 'console', text);
      if (teeing()) {
        passingThrough = true;
        try {
          originals[m].apply(target, args);
        } finally {
          passingThrough = false;
        }
      }
    };
    undo.push(replace(target, m, captured));
  }
  undo.push(replace(process.stdout, 'write', patchedWrite(stdoutWrite, process.stdout, () => stdoutLines)));
  undo.push(replace(process.stderr, 'write', patchedWrite(stderrWrite, process.stderr, () => stderrLines)));
}

function uninstall(): void {
  if (!undo) return;
  stdoutLines?.flush();
  stderrLines?.flush();
  for (const u of undo.reverse()) u();
  undo = null;
  stdoutLines = null;
  stderrLines = null;
}

/** Redirect this thread's console and stdout/stderr into `sink` until the returned function is called. */
export function captureOutput(sink: CaptureSink, options: CaptureOptions = {}): () => void {
  const owner: Owner = { sink, tee: options.tee === true };
  if (owners.length === 0) install();
  else {
    // Partial lines belong to the previous owner.
    stdoutLines?.flush();
    stderrLines?.flush();
  }
  owners.push(owner);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const i = owners.indexOf(owner);
    if (i === owners.length - 1) {
      stdoutLines?.flush();
      stderrLines?.flush();
    }
    if (i !== -1) owners.splice(i, 1);
    if (owners.length === 0) uninstall();
  };
}

/** Is this thread's output captured right now? */
export function outputCaptured(): boolean {
  return owners.length > 0;
}
