/**
 * The request a piece of code runs for, so that a console line written while a request runs (in a callback, a
 * promise, a timer it started) carries that request's id. One AsyncLocalStorage per thread; handlers enter it only
 * when they have a trace, so untraced serving pays nothing for it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const current = new AsyncLocalStorage<string>();
let counter = 0;

/** A request id unique within this thread (ThreadPoolHandler uses the main thread's numbering instead). */
export function nextRequestId(): string {
  counter = counter === Number.MAX_SAFE_INTEGER ? 1 : counter + 1;
  return String(counter);
}

export function currentRequestId(): string | undefined {
  return current.getStore();
}

export function runInRequest<T>(requestId: string, fn: () => T): T {
  return current.run(requestId, fn);
}
