/**
 * The soak's view into ThreadPoolHandler's workers: process.memoryUsage().heapUsed on the main thread does not
 * include a worker's V8 heap, so each worker (bench-app.ts installs this) answers a 'gc' broadcast by collecting
 * (--expose-gc is process-wide, so workers have gc() too) and posting its own heapUsed. The channel is unref'd so a
 * worker can still exit.
 */
import { BroadcastChannel, isMainThread, threadId } from 'node:worker_threads';

const CHANNEL = 'isapi-http-bench-gc';

export function installWorkerGc(): void {
  if (isMainThread) return;
  const channel = new BroadcastChannel(CHANNEL);
  channel.onmessage = (event: unknown) => {
    if ((event as MessageEvent).data !== 'gc') return;
    globalThis.gc?.();
    channel.postMessage({ thread: threadId, heapUsed: process.memoryUsage().heapUsed });
  };
  channel.unref();
}

/** From the main thread: gc() in `workers` workers and return their heapUsed (bytes), in thread-id order. */
export function gcWorkers(workers: number, timeoutMs = 5000): Promise<number[]> {
  const channel = new BroadcastChannel(CHANNEL);
  const got: { thread: number; heapUsed: number }[] = [];
  return new Promise<number[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      channel.close();
      reject(new Error(`gcWorkers: ${got.length}/${workers} workers answered within ${timeoutMs} ms`));
    }, timeoutMs);
    channel.onmessage = (event: unknown) => {
      got.push((event as MessageEvent).data as { thread: number; heapUsed: number });
      if (got.length < workers) return;
      clearTimeout(timer);
      channel.close();
      resolve(got.sort((a, b) => a.thread - b.thread).map((g) => g.heapUsed));
    };
    channel.postMessage('gc');
  });
}
