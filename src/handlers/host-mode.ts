/**
 * Host mode: the extension runs inside a native host (w3wp.exe through a loader DLL), where an uncaught exception
 * would take the whole worker process, and every site on it, down.
 *
 * It begins when a loader calls GetExtensionVersion through the native entry point, and ends after
 * TerminateExtension has drained. Only then does the library install process-wide hooks, so tests and inject()
 * never see them (P1: no global side effects outside host mode). While it lasts:
 * - an error thrown asynchronously by the app (a timer, an event handler, an unhandled rejection) is logged and
 *   becomes a 500 for the request it belongs to (found through AsyncLocalStorage), or a closed connection once
 *   that request's head is out; an error that belongs to no request is logged and the process keeps serving;
 * - a ref'd timer keeps this thread's event loop alive, because koffi's relay does not (koffi.md pitfall 3).
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  fail(error: unknown): void;
}

const context = new AsyncLocalStorage<RequestContext>();
let depth = 0;
let keepAlive: NodeJS.Timeout | null = null;
let log: (error: unknown) => void = (error) => console.error('isapi-http: uncaught error contained in host mode:', error);

function contain(error: unknown): void {
  const request = context.getStore();
  try {
    log(error);
  } catch {
    // the logger itself must not escape either
  }
  if (request) request.fail(error);
}

function onRejection(reason: unknown): void {
  contain(reason);
}

export function hostModeActive(): boolean {
  return depth > 0;
}

/** Enter host mode (reference-counted: each extension that a loader started holds one reference). */
export function enterHostMode(logger?: (error: unknown) => void): void {
  if (logger) log = logger;
  if (depth++ > 0) return;
  process.on('uncaughtException', contain);
  process.on('unhandledRejection', onRejection);
  keepAlive = setInterval(() => undefined, 1 << 30);
}

export function exitHostMode(): void {
  if (depth === 0 || --depth > 0) return;
  process.removeListener('uncaughtException', contain);
  process.removeListener('unhandledRejection', onRejection);
  if (keepAlive) clearInterval(keepAlive);
  keepAlive = null;
}

/** Run `fn` so that errors it causes later can be traced back to `request` (only in host mode: ALS has a cost). */
export function withinRequest<T>(request: RequestContext, fn: () => T): T {
  return depth > 0 ? context.run(request, fn) : fn();
}
