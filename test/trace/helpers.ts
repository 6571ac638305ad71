/**
 * Shared by the trace tests: unique channel names (jest runs files in parallel processes, and names are global
 * to the machine), a collector that gathers lines in memory, and polling.
 */
import { runTraceCollector, type TraceCollectorOptions, type TraceCollectorResult } from '../../src/trace/collector.js';
import type { TraceRecord } from '../../src/trace/record.js';

let counter = 0;
export function uniqueName(tag = 't'): string {
  return `${tag}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
}

export async function waitFor(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface Collected {
  readonly lines: string[];
  /** The lines parsed as records (only meaningful with json: true). */
  records(): TraceRecord[];
  readonly done: Promise<TraceCollectorResult>;
  stop(): Promise<TraceCollectorResult>;
}

/** Run a collector whose output lands in `lines`; `stop()` aborts it. */
export function collect(options: TraceCollectorOptions): Collected {
  const lines: string[] = [];
  const abort = new AbortController();
  const done = runTraceCollector({ signal: abort.signal, ...options, output: (line) => lines.push(line) });
  return {
    lines,
    records: () => lines.map((l) => JSON.parse(l) as TraceRecord),
    done,
    stop: () => {
      abort.abort();
      return done;
    },
  };
}
