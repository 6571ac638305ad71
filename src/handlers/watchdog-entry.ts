/**
 * The watchdog thread. A stalled thread cannot notice its own stall, so this one watches the served thread's
 * heartbeat from outside and, past the threshold, calls HSE_REQ_REPORT_UNHEALTHY itself, from this thread, on an ECB
 * that is still pending (ISAPI.md §10: "always TRUE; recycles only if health monitoring is on").
 *
 * Under a native host the call goes straight to IIS's ServerSupportFunction. Under EmulatedHost the host callbacks
 * are JS on the stalled thread, so the report waits for it: that host cannot show this, the C host can.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { completionRoutine, releaseIoCompletion } from '../ecb/io-completion.js';
import { NativeEcb } from '../ecb/native-ecb.js';
import { WatchdogState } from './watchdog-state.js';

export interface WatchdogInit {
  readonly state: SharedArrayBuffer;
  readonly stallMs: number;
  readonly heapLimitBytes: number;
  readonly heapWindowMs: number;
  readonly checkMs: number;
}

const init = workerData as WatchdogInit;
// koffi 3.3.4: a worker thread that calls a native function before it has registered any callback crashed with
// SIGSEGV inside koffi.node (reproduced by test/handlers/watchdog.test.ts). Registering this thread's completion
// routine first, as ThreadPoolHandler's workers do, avoids it; it is released when the watchdog stops.
completionRoutine();
const state = new WatchdogState(init.state);
let stalled = false;
let heapSince = 0;
let heapReported = false;

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function report(reason: string): boolean {
  const borrowed = state.borrow();
  if (!borrowed) return false;
  const [cell, address] = borrowed;
  try {
    new NativeEcb(address).reportUnhealthy(reason);
    parentPort?.postMessage({ type: 'unhealthy', reason });
    return true;
  } catch (error) {
    parentPort?.postMessage({ type: 'error', error: String((error as Error)?.stack ?? error) });
    return false;
  } finally {
    state.giveBack(cell);
  }
}

const timer = setInterval(() => {
  const now = Date.now();
  const silent = now - state.lastBeat;
  if (silent > init.stallMs) {
    // One report per stall; retried on the next check while no pending ECB is available to carry it.
    if (!stalled) stalled = report(`isapi-http: the JS thread serving requests has not responded for ${seconds(silent)} (threshold ${seconds(init.stallMs)})`);
  } else {
    stalled = false;
  }
  if (init.heapLimitBytes > 0 && state.heapBytes > init.heapLimitBytes) {
    heapSince ||= now;
    if (!heapReported && now - heapSince >= init.heapWindowMs) {
      heapReported = report(`isapi-http: heap in use ${Math.round(state.heapBytes / 2 ** 20)} MiB has stayed above ${Math.round(init.heapLimitBytes / 2 ** 20)} MiB for ${seconds(init.heapWindowMs)}`);
    }
  } else {
    heapSince = 0;
    heapReported = false;
  }
}, init.checkMs);

parentPort?.on('message', (m: { type: string }) => {
  if (m.type === 'stop') {
    clearInterval(timer);
    releaseIoCompletion();
    parentPort?.close();
  }
});
