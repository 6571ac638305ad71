/**
 * The benches' app, served by SimpleHandler (imported on the main thread) and by ThreadPoolHandler (imported by
 * each worker, which also gets the soak's gc hook, bench/apps/worker-gc.ts).
 *
 *   GET  /hello  → "hello" (the trivial handler)
 *   GET  /cpu    → work(BENCH_CPU_ITERS) as text: a fixed amount of synchronous CPU work
 *   POST /echo   → the request body
 *
 * /cpu does a FIXED number of iterations (bench/handlers.ts calibrates BENCH_CPU_ITERS to ≈2 ms on an idle core
 * before any worker starts; workers copy process.env), not "spin until 2 ms have passed": a time-based spin finishes
 * on time even when its thread was descheduled half the while, which would flatter a pool that has more runnable
 * threads than cores. Without BENCH_CPU_ITERS, /cpu answers 500, so a bench that forgot to calibrate fails loudly.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { installWorkerGc } from './worker-gc.js';

installWorkerGc();

/** The synchronous work: an xorshift loop V8 cannot fold away (its result is the response body). */
export function work(iterations: number): number {
  let x = 0x9e3779b9 | 0;
  for (let i = 0; i < iterations; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return x >>> 0;
}

export default function app(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/cpu') {
    const cpuIters = Number(process.env.BENCH_CPU_ITERS); // read per request: the main thread sets it after import
    if (!(cpuIters > 0)) {
      res.statusCode = 500;
      res.end('BENCH_CPU_ITERS is not set: bench/handlers.ts calibrates it before the app is loaded');
      return;
    }
    res.end(String(work(cpuIters)));
  } else if (path === '/echo') {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => res.end(Buffer.concat(parts)));
  } else {
    res.end('hello');
  }
}
