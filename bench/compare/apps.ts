/**
 * The two apps `npm run bench` (bench/compare.ts) serves: a plain node:http listener and an Express 5 hello-world.
 * Both answer GET / with "hello" (Express adds its usual headers: Content-Type, ETag, X-Powered-By).
 *
 * `timed(app)` is for the C reference host rows only, whose host keeps no clock: it stamps process.hrtime (one
 * CLOCK_MONOTONIC for every thread) at the response's 'finish' into a shared BigInt64Array, at the index given by
 * the request's `?i=` query. Under ThreadPoolHandler the app runs in worker threads, so the buffer reaches them
 * over a BroadcastChannel (shareFinishTimes). The in-process and loopback rows time on the caller's side and use
 * the bare apps.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, sep } from 'node:path';
import { BroadcastChannel, isMainThread, threadId } from 'node:worker_threads';
import express from 'express';

export type Listener = (req: IncomingMessage, res: ServerResponse) => void;

export const plainListener: Listener = (_req, res) => {
  res.end('hello');
};

export function createExpressApp(factory: typeof express = express): Listener {
  const app = factory();
  app.get('/', (_req, res) => {
    res.send('hello');
  });
  return app as unknown as Listener;
}

/**
 * A second, private instance of the express module, with its own `express.request` / `express.response`
 * prototypes. light-my-request needs one: given an Express app, its inject() re-parents those two prototypes,
 * which every Express app in the process shares, onto its own Request/Response (light-my-request index.js,
 * `Object.setPrototypeOf(Object.getPrototypeOf(dispatchFunc.request), ...)`); after that, the same app run by
 * serverless-http fails with a 500 (`req.headers` is undefined), and every other path would run on
 * light-my-request's prototypes. Only express's own files are loaded again; its dependencies are shared.
 */
export function privateExpress(): typeof express {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('express/package.json')) + sep;
  const saved = new Map<string, NodeModule>();
  for (const [file, mod] of Object.entries(require.cache)) {
    if (file.startsWith(root) && mod) {
      saved.set(file, mod);
      delete require.cache[file];
    }
  }
  try {
    return require('express') as typeof express;
  } finally {
    for (const file of Object.keys(require.cache)) if (file.startsWith(root)) delete require.cache[file];
    for (const [file, mod] of saved) require.cache[file] = mod;
  }
}

const CHANNEL = 'isapi-http-bench-compare';
let finishTimes: BigInt64Array | null = null;

export function timed(app: Listener): Listener {
  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?i=');
    const times = finishTimes;
    if (q !== -1 && times !== null) {
      const i = Number(url.slice(q + 3));
      res.once('finish', () => void Atomics.store(times, i, process.hrtime.bigint()));
    }
    app(req, res);
  };
}

if (!isMainThread) {
  // A worker of ThreadPoolHandler: take the buffer when the main thread shares it, and say so.
  const channel = new BroadcastChannel(CHANNEL);
  channel.onmessage = (event: unknown) => {
    const data = (event as { data: unknown }).data;
    if (!(data instanceof SharedArrayBuffer)) return; // another worker's acknowledgement
    finishTimes = new BigInt64Array(data);
    channel.postMessage(threadId);
  };
  channel.unref();
}

/**
 * Give this thread and `workers` worker threads (already started, with this module loaded) the buffer that timed()
 * writes into; resolves once every worker has it.
 */
export function shareFinishTimes(buffer: SharedArrayBuffer, workers: number, timeoutMs = 10_000): Promise<void> {
  finishTimes = new BigInt64Array(buffer);
  if (workers === 0) return Promise.resolve();
  const channel = new BroadcastChannel(CHANNEL);
  const seen = new Set<number>();
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      channel.close();
      reject(new Error(`bench: ${seen.size}/${workers} workers took the timing buffer`));
    }, timeoutMs);
    channel.onmessage = (event: unknown) => {
      seen.add((event as { data: number }).data);
      if (seen.size < workers) return;
      clearTimeout(timer);
      channel.close();
      resolve();
    };
    channel.postMessage(buffer);
  });
}
