/**
 * The worker thread of ThreadPoolHandler. It imports the app module itself, runs it under its own SimpleHandler,
 * and does all the ECB I/O of the requests it is given from its own thread, with its own IO completion routine
 * (koffi.md §3d: each worker has its own koffi instance and type registry; addresses cross threads, types do not).
 *
 * Protocol (messages from the main thread):
 * - `{ type: 'request', id, ecb, slot }`: serve the ECB at address `ecb`; reply `{ type: 'done', id }` once its
 *   session has ended.
 * - `{ type: 'stop' }`: finish the requests in flight, unregister every koffi callback this thread registered
 *   (a dead worker's callback aborts the process, koffi.md pitfall 7), and exit.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { completionRoutine, releaseIoCompletion } from '../ecb/io-completion.js';
import { SimpleHandler } from './simple-handler.js';
import { SlotTable } from './slot-state.js';
import { TrackedEcb } from './tracked-ecb.js';
import { loadApp } from './load-app.js';
import { prepareRequestListener } from './to-request-listener.js';
import { IsapiError, ErrorCodes } from '../errors.js';
import type { SimpleHandlerOptions } from './simple-handler.js';
import { WorkerTrace, type WorkerTraceInit } from '../trace/worker-trace.js';

export interface WorkerInit {
  readonly appUrl: string;
  readonly exportName: string;
  readonly slots: SharedArrayBuffer;
  readonly handlerOptions: Omit<SimpleHandlerOptions, 'onError' | 'logNote' | 'trace'>;
  /** Present when the pool has a trace channel: this worker forwards its records to it (trace/worker-trace.ts). */
  readonly trace?: WorkerTraceInit;
  /**
   * Run the framework's start-up before saying ready, and fail the load if it fails (a reload's fresh workers:
   * the pool must not switch to code that cannot start). Otherwise it runs before the first request, as always.
   */
  readonly startEagerly?: boolean;
}

type MainMessage = { type: 'request'; id: number; ecb: bigint; slot: number } | { type: 'stop' } | { type: 'trace'; capture: boolean };

function serialiseError(error: unknown): { message: string; stack?: string; code?: string } {
  const e = error as { message?: unknown; stack?: unknown; code?: unknown; cause?: { stack?: unknown } };
  let stack = typeof e?.stack === 'string' ? e.stack : undefined;
  // loadApp wraps the import's error: its stack says where (a CommonJS SyntaxError names the file and line there).
  if (stack !== undefined && typeof e?.cause?.stack === 'string') stack += `\nCaused by: ${e.cause.stack}`;
  return { message: String(e?.message ?? error), stack, code: typeof e?.code === 'string' ? e.code : undefined };
}

/** An extension module's default export (createExtension's result) instead of an app. */
function looksLikeExtension(value: unknown): boolean {
  const v = value as { HttpExtensionProc?: unknown; nativeEntryPoints?: unknown } | null;
  return v !== null && typeof v === 'object' && typeof v.HttpExtensionProc === 'function' && typeof v.nativeEntryPoints === 'function';
}

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('isapi-http: worker-entry must run in a worker thread');
  const init = workerData as WorkerInit;
  const table = new SlotTable(init.slots);
  // Register this thread's completion routine now, outside any koffi callback (io-completion.ts).
  completionRoutine();
  // Before the app loads, so that what it prints while starting is traced too.
  let trace: WorkerTrace | null = init.trace ? new WorkerTrace(port, init.trace) : null;
  let handler: SimpleHandler;
  try {
    const app = await loadApp(init.appUrl, init.exportName);
    if (looksLikeExtension(app)) {
      throw new IsapiError(
        ErrorCodes.INVALID_ARGUMENT,
        `the export ${JSON.stringify(init.exportName)} of ${init.appUrl} is an ISAPI extension (createExtension(...)), which brings its own handler; a thread pool needs the app itself`,
      );
    }
    const served = init.startEagerly ? await prepareRequestListener(app as never) : app;
    handler = new SimpleHandler(served as never, {
      ...init.handlerOptions,
      trace: trace ?? undefined,
      onError: (error, req) => port.postMessage({ type: 'app-error', url: req?.url, method: req?.method, error: serialiseError(error), traced: trace !== null }),
    });
  } catch (error) {
    port.postMessage({ type: 'load-error', error: serialiseError(error) });
    trace?.dispose();
    releaseIoCompletion();
    port.close();
    return;
  }
  let stopping = false;
  let inFlight = 0;
  const finishStop = (): void => {
    if (!stopping || inFlight > 0) return;
    trace?.dispose();
    releaseIoCompletion();
    port.close();
  };
  port.on('message', (message: MainMessage) => {
    if (message.type === 'stop') {
      stopping = true;
      return finishStop();
    }
    if (message.type === 'trace') {
      trace ??= new WorkerTrace(port, { capture: false });
      handler.attachTrace(trace);
      return trace.setCapture(message.capture);
    }
    inFlight++;
    let ecb: TrackedEcb;
    try {
      ecb = new TrackedEcb(message.ecb, table, message.slot);
    } catch (error) {
      inFlight--;
      port.postMessage({ type: 'done', id: message.id, error: serialiseError(error) });
      return;
    }
    void handler.serve(ecb, String(message.id)).then(() => {
      inFlight--;
      port.postMessage({ type: 'done', id: message.id });
      finishStop();
    });
  });
  port.postMessage({ type: 'ready' });
}

void main();
