/**
 * The optional file sink: JSON lines appended to a file, rotated by size, keeping N old files
 * (`trace.log` → `trace.log.1` → … → `trace.log.<keep>`, the oldest deleted).
 *
 * It never blocks the thread that logs: `write` only queues the line; one asynchronous loop (fs.promises, i.e. the
 * libuv thread pool) appends batches and rotates between them. The queue is bounded (`maxBufferBytes`): when the
 * disk cannot keep up, new lines are dropped and counted, and a line saying so is written once it can be.
 */
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { invalidArgument } from '../errors.js';

export interface TraceFileOptions {
  /** The file to append to (its directory is created if needed). */
  readonly path: string;
  /** Rotate once the file would grow past this many bytes. Default 10 MiB. */
  readonly maxBytes?: number;
  /** Rotated files kept besides the current one. Default 5; 0 truncates in place instead. */
  readonly keep?: number;
  /** Lines waiting for the disk, in bytes (approximately), before new ones are dropped. Default 4 MiB. */
  readonly maxBufferBytes?: number;
}

/** After a failure to open or write, how long the sink drops lines before it tries the file again. */
const RETRY_MS = 5000;
/** One append carries at most about this much. */
const BATCH_BYTES = 256 * 1024;

export class RotatingFileSink {
  readonly path: string;
  /** Lines dropped: the queue was full, or the file could not be written. */
  dropped = 0;
  /** Lines written to disk. */
  written = 0;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly maxBufferBytes: number;
  private readonly onProblem: (message: string) => void;
  private queue: string[] = [];
  private queuedBytes = 0;
  private unreported = 0;
  private handle: fs.FileHandle | null = null;
  private size = 0;
  private pumping: Promise<void> | null = null;
  private failedUntil = 0;
  private closed = false;

  constructor(options: TraceFileOptions, onProblem: (message: string) => void = () => undefined) {
    if (!options || typeof options.path !== 'string' || options.path.length === 0) throw invalidArgument('the trace file sink needs a path');
    const int = (name: string, value: number | undefined, fallback: number, min: number): number => {
      const v = value ?? fallback;
      if (!Number.isInteger(v) || v < min) throw invalidArgument(`trace file option ${name} must be an integer ≥ ${min}, got ${String(value)}`);
      return v;
    };
    this.path = options.path;
    this.maxBytes = int('maxBytes', options.maxBytes, 10 * 2 ** 20, 1024);
    this.keep = int('keep', options.keep, 5, 0);
    this.maxBufferBytes = int('maxBufferBytes', options.maxBufferBytes, 4 * 2 ** 20, 1024);
    this.onProblem = onProblem;
  }

  write(line: string): void {
    if (this.closed || Date.now() < this.failedUntil || this.queuedBytes + line.length > this.maxBufferBytes) {
      this.dropped++;
      this.unreported++;
      return;
    }
    if (this.unreported > 0) {
      const notice = { time: Date.now(), level: 'warn', msg: `trace: ${this.unreported} line(s) dropped by the file sink`, source: 'channel', dropped: this.unreported };
      this.unreported = 0;
      this.enqueue(`${JSON.stringify(notice)}\n`);
    }
    this.enqueue(line);
  }

  private enqueue(line: string): void {
    this.queue.push(line);
    this.queuedBytes += line.length;
    this.pumping ??= this.pump();
  }

  private takeBatch(): Buffer {
    let chars = 0;
    let n = 0;
    while (n < this.queue.length && (n === 0 || chars < BATCH_BYTES)) chars += (this.queue[n++] as string).length;
    const text = this.queue.splice(0, n).join('');
    this.queuedBytes -= chars;
    return Buffer.from(text, 'utf8');
  }

  private async pump(): Promise<void> {
    // Yield first, so that `pumping` is set before the loop can finish and clear it.
    await Promise.resolve();
    try {
      await this.drain();
    } finally {
      this.pumping = null;
    }
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.takeBatch();
      if (batch.length === 0) continue;
      try {
        if (!this.handle) await this.open();
        if (this.size > 0 && this.size + batch.length > this.maxBytes) await this.rotate();
        await (this.handle as fs.FileHandle).write(batch);
        this.size += batch.length;
        this.written += countLines(batch);
      } catch (error) {
        const lost = countLines(batch) + this.queue.length;
        this.queue = [];
        this.queuedBytes = 0;
        this.dropped += lost;
        this.unreported += lost;
        this.failedUntil = Date.now() + RETRY_MS;
        await this.handle?.close().catch(() => undefined);
        this.handle = null;
        this.onProblem(`trace: cannot write ${this.path} (${(error as Error).message}); lines are dropped for ${RETRY_MS / 1000} s`);
        return;
      }
    }
  }

  private async open(): Promise<void> {
    await fs.mkdir(dirname(this.path), { recursive: true });
    this.handle = await fs.open(this.path, 'a');
    this.size = (await this.handle.stat()).size;
  }

  private async rotate(): Promise<void> {
    await this.handle?.close();
    this.handle = null;
    if (this.keep === 0) {
      this.handle = await fs.open(this.path, 'w');
      this.size = 0;
      return;
    }
    const ignoreMissing = (error: NodeJS.ErrnoException): void => {
      if (error.code !== 'ENOENT') throw error;
    };
    await fs.rm(`${this.path}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--) await fs.rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch(ignoreMissing);
    await fs.rename(this.path, `${this.path}.1`).catch(ignoreMissing);
    await this.open();
  }

  /** Resolves when everything queued so far is on disk (or dropped). */
  async flush(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    await this.handle?.close().catch(() => undefined);
    this.handle = null;
  }
}

function countLines(buffer: Buffer): number {
  let n = 0;
  for (let i = buffer.indexOf(10); i !== -1; i = buffer.indexOf(10, i + 1)) n++;
  return n;
}
