/**
 * The trace channel of host mode. When a loader starts an extension (GetExtensionVersion through the native entry
 * point), createExtension calls `startHostTrace`: a channel named after the app pool is created (or shared, when
 * several extensions of one w3wp use the same name), this thread's console and stdout/stderr are captured into it,
 * and the handler is given it for its diagnostics and per-request records. `stop()` undoes all of it once
 * TerminateExtension has drained; the last extension to stop closes the channel it created.
 *
 * Outside host mode (tests, inject(), createServer) none of this happens unless asked for.
 */
import { createTraceChannel, liveTraceChannel, TraceChannel, type TraceChannelOptions } from './channel.js';
import { defaultTraceName, traceEndpoint } from './endpoint.js';

/**
 * ExtensionOptions.trace: `false` turns host mode's channel off; a TraceChannel is used as it is (and never closed
 * by the extension); options (or `true`, or nothing) create one with `whenInUse: 'retry'`.
 */
export type ExtensionTraceOption = boolean | TraceChannel | TraceChannelOptions;

/** A handler that can be given a channel after construction (SimpleHandler, ThreadPoolHandler). */
export interface TraceAware {
  attachTrace(channel: TraceChannel): void;
}

export interface HostTrace {
  readonly channel: TraceChannel;
  /** Release the capture and, for the last user of a channel host mode created, close it. Idempotent. */
  stop(): void;
}

const shared = new Map<string, { channel: TraceChannel; refs: number }>();

export function startHostTrace(option: ExtensionTraceOption | undefined): HostTrace | null {
  if (option === false) return null;
  let channel: TraceChannel;
  let owned = false;
  if (option instanceof TraceChannel) channel = option;
  else {
    const options: TraceChannelOptions = option === true || option === undefined ? {} : option;
    const name = options.name ?? defaultTraceName();
    const path = traceEndpoint(name);
    const mine = shared.get(path);
    const theirs = liveTraceChannel(path);
    if (mine) {
      mine.refs++;
      channel = mine.channel;
      owned = true;
    } else if (theirs) {
      // The app created a channel with this name itself: use it, leave its lifetime to the app.
      channel = theirs;
    } else {
      channel = createTraceChannel({ whenInUse: 'retry', ...options, name });
      shared.set(path, { channel, refs: 1 });
      owned = true;
    }
  }
  channel.capture();
  channel.info(`host mode: tracing to "${channel.name}" (${channel.path}); process ${process.pid}`);
  let stopped = false;
  return {
    channel,
    stop() {
      if (stopped) return;
      stopped = true;
      channel.info('host mode ends');
      channel.release();
      if (!owned) return;
      const entry = shared.get(channel.path);
      if (entry && --entry.refs === 0) {
        shared.delete(channel.path);
        void channel.close();
      }
    },
  };
}

/** Give `channel` to a handler that takes one; returns false for a handler that does not. */
export function attachTrace(handler: object, channel: TraceChannel): boolean {
  const aware = handler as Partial<TraceAware>;
  if (typeof aware.attachTrace !== 'function') return false;
  aware.attachTrace(channel);
  return true;
}
