/**
 * The health watchdog (issue: operations). The thread that serves requests beats a heartbeat and publishes its
 * pending ECBs; a separate watchdog thread (watchdog-entry.ts) reports HSE_REQ_REPORT_UNHEALTHY when the beats stop
 * for longer than `stallMs`, or when the heap stays above `heapLimitMb` for `heapWindowMs`.
 */
import { Worker } from 'node:worker_threads';
import { NativeEcb } from '../ecb/native-ecb.js';
import { invalidArgument } from '../errors.js';
import type { WatchdogInit } from './watchdog-entry.js';
import { WatchdogState } from './watchdog-state.js';
import { workerFile } from './worker-path.js';

export interface WatchdogOptions {
  /** Report when the served thread has not beaten for this long. Default 30 s. */
  readonly stallMs?: number;
  /** Report when the heap in use stays above this many MiB for heapWindowMs. Default: no heap check. */
  readonly heapLimitMb?: number;
  readonly heapWindowMs?: number;
  /** Heartbeat and check period. Default 1 s (or stallMs / 4 when shorter). */
  readonly intervalMs?: number;
  /** Pending ECBs tracked at once. Default 4096. */
  readonly capacity?: number;
  /** Where reports go besides IIS (the trace channel, a log). */
  readonly onReport?: (reason: string) => void;
}

export class Watchdog {
  readonly state: WatchdogState;
  private readonly thread: Worker;
  private readonly beat: NodeJS.Timeout;

  constructor(options: WatchdogOptions = {}) {
    const stallMs = options.stallMs ?? 30_000;
    if (!(stallMs > 0)) throw invalidArgument(`watchdog stallMs must be positive, got ${stallMs}`);
    const interval = options.intervalMs ?? Math.min(1000, Math.max(10, Math.floor(stallMs / 4)));
    this.state = new WatchdogState(options.capacity ?? 4096);
    const tick = (): void => this.state.beat(Date.now(), process.memoryUsage().heapUsed);
    tick();
    // The beat must not keep the process alive by itself; host mode's own timer does that.
    this.beat = setInterval(tick, interval);
    this.beat.unref();
    const init: WatchdogInit = {
      state: this.state.buffer,
      stallMs,
      heapLimitBytes: (options.heapLimitMb ?? 0) * 2 ** 20,
      heapWindowMs: options.heapWindowMs ?? 60_000,
      checkMs: interval,
    };
    const { filename, execArgv } = workerFile('watchdog');
    this.thread = new Worker(filename, { workerData: init, execArgv });
    this.thread.unref();
    this.thread.on('message', (m: { type: string; reason?: string; error?: string }) => {
      if (m.type === 'unhealthy' && m.reason) options.onReport?.(m.reason);
      else if (m.type === 'error') options.onReport?.(`isapi-http: the watchdog could not report: ${m.error}`);
    });
  }

  /** Stop beating and stop the watchdog thread. */
  stop(): Promise<void> {
    clearInterval(this.beat);
    return new Promise((resolve) => {
      this.thread.once('exit', () => resolve());
      this.thread.postMessage({ type: 'stop' });
    });
  }
}

/** A NativeEcb whose pending state is published to the watchdog until its session ends. */

export class WatchedEcb extends NativeEcb {
  private readonly watched: WatchdogState;
  private readonly cell: number;

  constructor(address: bigint, state: WatchdogState) {
    super(address);
    this.watched = state;
    this.cell = state.add(address);
  }

  override doneWithSession(status?: number): void {
    // First take the ECB back from the watchdog's table: it must never report on a finished session.
    this.watched.remove(this.cell);
    super.doneWithSession(status);
  }
}
