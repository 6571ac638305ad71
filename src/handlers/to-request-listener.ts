/**
 * toRequestListener: whatever app a user hands us, a plain `(req, res)` listener that drives it the way its own
 * server would (recipes: node-adapter-pitfalls.md §1.9). Start-up that a framework does asynchronously (Fastify's
 * ready(), Hapi's initialize(), NestJS's init()) runs once, before the first request; while it runs, requests
 * wait for it; if it fails, every request gets 503 and the reason is logged once. A request answered while it waited
 * (by the per-request timeout) is not handed to the app afterwards. Nothing here touches a prototype.
 *
 * Detection, in order:
 * - an object with `fetch` (Hono, or `{ fetch }`), or a function of exactly one parameter: a Fetch handler,
 *   converted by @hono/node-server's getRequestListener (chosen because it is maintained with Hono, streams both
 *   ways, and already handles the socket details the pitfalls list: Host, rawHeaders, encrypted, destroySoon);
 * - NestJS (`getHttpAdapter` + `init`): init() once, then its underlying Express or Fastify instance;
 * - Fastify (`routing` + `ready`): ready() once, then `routing(req, res)`;
 * - Hapi (`initialize` + `listener`): initialize() once, then `listener.emit('request', req, res)` (public API);
 * - Koa (`callback` + `use`): `callback()` once, cached (P18: never compose per request);
 * - Polka (`handler`), Restana (`callback()`/`handle`);
 * - any other function: a `(req, res)` listener — Express 4/5, Connect, node:http listeners.
 */
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { IsapiError, ErrorCodes } from '../errors.js';
import type { RequestListener } from '../http/exchange.js';

/**
 * Anything toRequestListener accepts. Typed loosely on purpose: frameworks ship their own types. A Fetch handler
 * (a FetchHandler, or an object with `fetch`) is an `object` too; keeping RequestListener the only function type in
 * the union lets TypeScript type an inline `(req, res) => ...` without annotations.
 */
export type AppLike = RequestListener | object;
export type FetchHandler = (request: Request, ...rest: unknown[]) => Response | Promise<Response>;

type AnyFn = (...args: unknown[]) => unknown;
const isFn = (v: unknown): v is AnyFn => typeof v === 'function';
const has = (o: unknown, ...names: string[]): boolean => o !== null && (typeof o === 'object' || typeof o === 'function') && names.every((n) => isFn((o as Record<string, unknown>)[n]));

/** What a detected app turns into: a listener, plus an optional start-up to await once. */
interface Driven {
  readonly kind: string;
  readonly start?: () => Promise<RequestListener>;
  readonly listener?: RequestListener;
}

function fetchListener(handler: FetchHandler): RequestListener {
  let adapter: { getRequestListener: (fetch: FetchHandler) => RequestListener };
  try {
    const req = createRequire(typeof __filename === 'string' ? __filename : process.cwd() + '/');
    adapter = req('@hono/node-server') as typeof adapter;
  } catch (cause) {
    throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, 'serving a Fetch-style handler needs the optional peer dependency @hono/node-server: npm install @hono/node-server', { cause });
  }
  return adapter.getRequestListener(handler);
}

function detect(app: unknown, depth = 0): Driven {
  if (depth > 3) throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, 'toRequestListener: the app nests too deeply (an adapter returning itself?)');
  if (app !== null && typeof app === 'object' && isFn((app as { fetch?: unknown }).fetch)) {
    const fetch = (app as { fetch: FetchHandler }).fetch.bind(app);
    return { kind: 'fetch', listener: fetchListener(fetch) };
  }
  if (has(app, 'getHttpAdapter', 'init')) {
    const nest = app as { init(): Promise<unknown>; getHttpAdapter(): { getInstance(): unknown } };
    return {
      kind: 'nestjs',
      start: async () => {
        await nest.init();
        const inner = detect(nest.getHttpAdapter().getInstance(), depth + 1);
        return inner.start ? inner.start() : (inner.listener as RequestListener);
      },
    };
  }
  if (has(app, 'routing', 'ready')) {
    const fastify = app as { ready(): PromiseLike<unknown>; routing(req: IncomingMessage, res: ServerResponse): void };
    return {
      kind: 'fastify',
      start: async () => {
        await fastify.ready();
        return (req, res) => fastify.routing(req, res);
      },
    };
  }
  if (has(app, 'initialize') && app !== null && typeof app === 'object' && has((app as { listener?: unknown }).listener, 'emit')) {
    const hapi = app as { initialize(): Promise<void>; listener: { emit(event: string, ...args: unknown[]): boolean } };
    return {
      kind: 'hapi',
      start: async () => {
        await hapi.initialize();
        return (req, res) => void hapi.listener.emit('request', req, res);
      },
    };
  }
  if (has(app, 'callback', 'use')) {
    // Koa (and Restana's service, which also has callback()): compose once, here, not per request (P18).
    const composed = (app as { callback(): unknown }).callback();
    if (!isFn(composed)) throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, 'toRequestListener: app.callback() did not return a function');
    return { kind: 'koa', listener: composed as RequestListener };
  }
  if (app !== null && typeof app === 'object' && isFn((app as { handler?: unknown }).handler)) {
    const polka = app as { handler: RequestListener };
    return { kind: 'polka', listener: (req, res) => polka.handler(req, res) };
  }
  if (app !== null && typeof app === 'object' && isFn((app as { handle?: unknown }).handle)) {
    const restana = app as { handle: RequestListener };
    return { kind: 'handle', listener: (req, res) => restana.handle(req, res) };
  }
  if (isFn(app)) {
    // One declared parameter means (request) => Response; Express apps declare three, listeners two.
    if (app.length === 1) return { kind: 'fetch', listener: fetchListener(app as unknown as FetchHandler) };
    return { kind: 'listener', listener: app as RequestListener };
  }
  const got = app === null ? 'null' : Array.isArray(app) ? 'an array' : typeof app === 'object' ? `an object with keys [${Object.keys(app).slice(0, 8).join(', ')}]` : typeof app;
  throw new IsapiError(
    ErrorCodes.INVALID_ARGUMENT,
    `toRequestListener expected a (req, res) listener, an Express/Connect/Koa/Fastify/Hapi/NestJS/Polka/Restana app, ` +
      `a Fetch handler (request) => Response, or an object with .fetch (Hono); got ${got}`,
  );
}

export interface ToRequestListenerOptions {
  /** Where a start-up failure is reported. Default: console.error. */
  readonly onError?: (error: unknown) => void;
}

/**
 * The app's listener with its start-up (Fastify's ready(), Hapi's initialize(), NestJS's init()) already run: the
 * promise rejects with the start-up's error instead of every request getting 503 afterwards. ThreadPoolHandler's
 * reload uses it, so that it never switches to code that cannot start. The listener declares two parameters, so
 * toRequestListener takes it as a plain listener again.
 */
export async function prepareRequestListener(app: AppLike): Promise<RequestListener> {
  const driven = detect(app);
  const listener = driven.listener ?? (await (driven.start as () => Promise<RequestListener>)());
  return (req, res) => listener(req, res);
}

/** True once nothing more may be sent on `res`: it was ended, or destroyed. */
const answered = (res: ServerResponse): boolean => res.writableEnded || res.destroyed;

/** The `(req, res)` listener for `app`. Throws a coded error at once for a value that is no app. */
export function toRequestListener(app: AppLike, options: ToRequestListenerOptions = {}): RequestListener {
  const driven = detect(app);
  if (driven.listener) return driven.listener;
  const start = driven.start as () => Promise<RequestListener>;
  let ready: Promise<RequestListener> | null = null;
  let listener: RequestListener | null = null;
  return (req, res) => {
    if (listener) return listener(req, res);
    ready ??= start().then(
      (l) => (listener = l),
      (error: unknown) => {
        (options.onError ?? ((e: unknown) => console.error(`isapi-http: ${driven.kind} start-up failed:`, e)))(error);
        throw error;
      },
    );
    return ready.then(
      // A request already answered while it waited (the per-request timeout's 503) or whose client went away is not
      // handed to the app: a client told 503 may retry, and the app must not act on the request a second time.
      (l) => (answered(res) ? undefined : l(req, res)),
      () => {
        if (answered(res)) return;
        if (res.headersSent) return void res.destroy();
        res.statusCode = 503;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.setHeader('Retry-After', '5');
        res.end(`Service Unavailable: the ${driven.kind} app failed to start\n`);
      },
    );
  };
}
