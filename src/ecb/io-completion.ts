/**
 * One IO completion routine per thread, with a context map (DESIGN.md "Asynchronous I/O"; koffi.md §3e).
 *
 * Registering a koffi callback per request or per write works but spends callback slots (8192 per process) and
 * 0.4–0.7 µs each (koffi.md pitfall 13). Instead each thread registers one routine, and every ECB that starts
 * async I/O registers it with HSE_REQ_IO_COMPLETION and a small integer context that keys into `targets`.
 *
 * koffi's relay does not keep the event loop alive (pitfall 3): while any async operation is outstanding we
 * hold a ref'd timer, or Node could exit (and crash) under the host's I/O thread (koffi.md 6c).
 *
 * Each worker thread loads its own copy of this module, so the state below is per thread, as koffi's
 * registrations are. A worker must call `releaseIoCompletion()` before it exits: a dead worker's callback
 * aborts the process when the host calls it (pitfall 7).
 */
import { getAbi } from './abi.js';
import { getKoffi } from './koffi.js';

export interface CompletionTarget {
  onIoComplete(cbIO: number, dwError: number): void;
}

const targets = new Map<number, CompletionTarget>();
let nextContext = 1;
let routine: bigint | null = null;
let outstanding = 0;
let keepAlive: NodeJS.Timeout | null = null;
/** Errors thrown by a completion target: reported, never allowed to escape into koffi's trampoline (pitfall 6). */
let onError: (error: unknown) => void = (error) => {
  process.emitWarning(`isapi-http: an IO completion handler threw: ${String((error as Error)?.stack ?? error)}`, { code: 'ISAPI_HTTP_COMPLETION_ERROR' });
};

function completion(_pEcb: unknown, pContext: unknown, cbIO: number, dwError: number): void {
  try {
    const target = targets.get(Number(pContext as bigint | number | null ?? 0));
    if (target) target.onIoComplete(cbIO >>> 0, dwError >>> 0);
  } catch (error) {
    try {
      onError(error);
    } catch {
      // Never let anything escape into koffi.
    }
  }
}

/**
 * The native address of this thread's completion routine, registered on first use.
 *
 * koffi 3.3.4 trap (reproduced with koffi alone): a callback registered *while another koffi callback is running*
 * fails with "Maximum call stack size exceeded" whenever it is called later. Under a host, HttpExtensionProc is
 * such a callback, so the routine must be registered before the first request: createExtension() does it, and a
 * worker does it at start-up. The lazy path here only serves code that drives NativeEcb outside any callback.
 */
export function completionRoutine(): bigint {
  if (routine === null) {
    const koffi = getKoffi();
    routine = koffi.register(completion, koffi.pointer(getAbi().protos.PFN_HSE_IO_COMPLETION)) as unknown as bigint;
  }
  return routine;
}

/** Give an ECB its context key. */
/** This thread's routine if it has been registered, without registering it: tells a host whose routine it holds. */
export function registeredCompletionRoutine(): bigint | null {
  return routine;
}

export function addCompletionTarget(target: CompletionTarget): number {
  const ctx = nextContext;
  // Contexts travel as pointer-sized values; wrap well below 2^31 so they stay small positive integers.
  nextContext = nextContext >= 0x7fffffff ? 1 : nextContext + 1;
  targets.set(ctx, target);
  return ctx;
}

export function removeCompletionTarget(ctx: number): void {
  targets.delete(ctx);
}

/** Count an async operation in or out, keeping the event loop alive while any is outstanding. */
export function trackOutstanding(delta: 1 | -1): void {
  outstanding += delta;
  if (outstanding > 0) {
    if (!keepAlive) keepAlive = setInterval(() => undefined, 1 << 30);
    else if (!keepAlive.hasRef()) keepAlive.ref();
  } else if (keepAlive) {
    keepAlive.unref();
  }
}

export function outstandingIo(): number {
  return outstanding;
}

export function setCompletionErrorHandler(handler: (error: unknown) => void): void {
  onError = handler;
}

/**
 * Unregister this thread's routine. Returns false (and keeps it) while any ECB may still complete into it.
 */
export function releaseIoCompletion(): boolean {
  if (outstanding > 0 || targets.size > 0) return false;
  if (routine !== null) {
    getKoffi().unregister(routine as never);
    routine = null;
  }
  if (keepAlive) {
    clearInterval(keepAlive);
    keepAlive = null;
  }
  return true;
}
