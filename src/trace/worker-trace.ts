/**
 * A ThreadPoolHandler worker's side of the trace: its records go to the main thread's channel by postMessage.
 *
 * Why forward rather than let each worker write to the pipe itself: the ring, the collectors and the file live in
 * one place, in one order, and a collector that connects later sees every thread's recent records in its ring.
 * postMessage only queues (it never waits for the main thread), and what a worker posted before it died is still
 * delivered, before the main thread sees the worker's 'error' and 'exit' events. So a crash's record, with its
 * stack and the id of the request that caused it, reaches the channel even though the worker is gone.
 *
 * A worker's records are stamped `handler: 'threadpool'` and `worker: <its threadId>`.
 */
import { threadId } from 'node:worker_threads';
import { captureOutput, type CaptureSink } from './capture.js';
import { currentRequestId } from './context.js';
import { makeRecord, toTraceError, type TraceRecord } from './record.js';
import type { TraceTarget } from './request-trace.js';

/** Sent to a worker in its WorkerInit, and later as `{ type: 'trace', capture }` when the channel's capture changes. */
export interface WorkerTraceInit {
  /** Capture the worker's console and stdout/stderr (the main thread's channel is capturing). */
  readonly capture: boolean;
}

/** What a worker posts for each record. */
export interface WorkerTraceMessage {
  readonly type: 'trace';
  readonly record: TraceRecord;
}

interface Port {
  postMessage(message: unknown): void;
}

export class WorkerTrace implements TraceTarget {
  private readonly port: Port;
  private releaseOutput: (() => void) | null = null;
  private crashed = false;
  private stopping = false;

  constructor(port: Port, init: WorkerTraceInit) {
    this.port = port;
    // A monitor only observes: the worker still dies of the exception, as it would without the trace.
    process.on('uncaughtExceptionMonitor', this.onUncaught);
    process.on('exit', this.onExit);
    this.setCapture(init.capture);
  }

  write(record: TraceRecord): void {
    try {
      const message: WorkerTraceMessage = { type: 'trace', record: { ...record, handler: 'threadpool', worker: threadId } };
      this.port.postMessage(message);
    } catch {
      // a record that cannot be cloned or posted is lost, never the request
    }
  }

  setCapture(on: boolean): void {
    if (on && !this.releaseOutput) this.releaseOutput = captureOutput(this.sink);
    else if (!on && this.releaseOutput) {
      this.releaseOutput();
      this.releaseOutput = null;
    }
  }

  /** The worker is stopping normally: its exit is no crash. Releases the capture and the hooks. */
  dispose(): void {
    this.stopping = true;
    this.setCapture(false);
    process.removeListener('uncaughtExceptionMonitor', this.onUncaught);
    process.removeListener('exit', this.onExit);
  }

  private readonly sink: CaptureSink = (level, source, text) => {
    this.write(makeRecord(level, text, { source, requestId: currentRequestId() }));
  };

  private readonly onUncaught = (error: unknown, origin: string): void => {
    this.crashed = true;
    const err = toTraceError(error);
    const what = origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception';
    this.write(makeRecord('fatal', `${what} in worker thread ${threadId}, which exits: ${err.message}`, { kind: 'crash', requestId: currentRequestId(), err }));
  };

  private readonly onExit = (code: number): void => {
    if (this.crashed || this.stopping) return;
    // process.exit() from the app: 'exit' is emitted inside that call, so the stack and the request are the caller's.
    const stack = (new Error(`process.exit(${code}) in worker thread ${threadId}`).stack ?? '').split('\n');
    const err = { message: `process.exit(${code})`, stack: [stack[0], ...stack.slice(2)].join('\n') };
    this.write(makeRecord(code === 0 ? 'warn' : 'fatal', `worker thread ${threadId} exits with code ${code}`, { kind: 'exit', requestId: currentRequestId(), err }));
  };
}
