/**
 * toRequestListener: how each kind of app is recognised and driven, the one-time asynchronous start-up (Fastify's
 * ready(), Hapi's initialize(), NestJS's init()), what a failed or slow start-up answers, and the coded error for a
 * value that is no app. The framework matrix (test/frameworks) runs the real frameworks; these tests pin the rules.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import Hapi from '@hapi/hapi';
import fastify5 from 'fastify5';
import { ErrorCodes, IsapiError, SimpleHandler, toRequestListener, type AppLike } from 'isapi-http';
import { inject } from 'isapi-http/testing';

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

const hello: Listener = (_req, res) => void res.end('hello');

/** A deferred start-up, to control exactly when it ends. */
function gate<T = void>(): { promise: Promise<T>; open(value: T): void; fail(error: unknown): void } {
  let open!: (value: T) => void;
  let fail!: (error: unknown) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

/** Minimal stand-ins with the shape each framework is recognised by; each counts its start-ups. */
function fastifyLike(start: () => Promise<void>, listener: Listener = hello) {
  const app = { starts: 0, served: 0, ready: () => (app.starts++, start()), routing: (req: IncomingMessage, res: ServerResponse) => (app.served++, listener(req, res)) };
  return app;
}
function hapiLike(start: () => Promise<void>, listener: Listener = hello) {
  const app = {
    starts: 0,
    served: 0,
    initialize: () => (app.starts++, start()),
    listener: {
      emit: (event: string, req: IncomingMessage, res: ServerResponse) => {
        expect(event).toBe('request');
        app.served++;
        listener(req, res);
        return true;
      },
    },
  };
  return app;
}
function nestLike(start: () => Promise<void>, listener: Listener = hello) {
  const app = {
    starts: 0,
    served: 0,
    init: async () => {
      app.starts++;
      await start();
      return app;
    },
    getHttpAdapter: () => ({ getInstance: () => (req: IncomingMessage, res: ServerResponse) => (app.served++, listener(req, res)) }),
  };
  return app;
}

const KINDS = [
  ['Fastify-like (ready + routing)', fastifyLike],
  ['Hapi-like (initialize + listener)', hapiLike],
  ['Nest-like (init + getHttpAdapter)', nestLike],
] as const;

describe.each(KINDS)('asynchronous start-up: %s', (_name, make) => {
  test.each([false, true])('runs once, before the first request, even when the first requests arrive together (native: %s)', async (native) => {
    const started = gate();
    const app = make(() => started.promise);
    const pending = Promise.all(Array.from({ length: 5 }, (_v, i) => inject(app, `/r${i}`, { native })));
    await sleep(20);
    expect(app.starts).toBe(1);
    expect(app.served).toBe(0); // nobody is served before the start-up has finished
    started.open();
    const responses = await pending;
    expect(responses.map((r) => [r.statusCode, r.text(), r.record.doneCount])).toEqual(Array.from({ length: 5 }, () => [200, 'hello', 1]));
    expect(app.served).toBe(5);
    // Later requests go straight to the app.
    expect((await inject(app, '/later', { native })).text()).toBe('hello');
    expect(app.starts).toBe(1);
  });

  test('a start-up failure answers 503 to every request, logs why once, and never hangs', async () => {
    const reason = new Error('database unreachable');
    const app = make(() => Promise.reject(reason));
    const logged: unknown[] = [];
    const onError = (e: unknown): void => void logged.push(e);
    const [a, b] = await Promise.all([inject(app, '/a', { onError }), inject(app, '/b', { onError, native: true })]);
    const c = await inject(app, '/c', { onError });
    for (const res of [a, b, c]) {
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBeDefined();
      expect(res.text()).toMatch(/failed to start/);
      expect(res.record.doneCount).toBe(1);
    }
    expect(app.served).toBe(0);
    expect(logged.filter((e) => e === reason)).toHaveLength(1);
  });
});

describe('start-up failures and slow start-ups', () => {
  test('without onError, the failure goes to console.error, naming the framework and the reason', async () => {
    const spy = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const res = await inject(fastifyLike(() => Promise.reject(new Error('bad config'))), '/');
      expect(res.statusCode).toBe(503);
      expect(spy).toHaveBeenCalledWith(expect.stringContaining('fastify start-up failed'), expect.objectContaining({ message: 'bad config' }));
    } finally {
      spy.mockRestore();
    }
  });

  test('a synchronous throw in the start-up is a start-up failure too', async () => {
    const app = fastifyLike(() => {
      throw new Error('sync');
    });
    const logged: unknown[] = [];
    const res = await inject(app, '/', { onError: (e) => void logged.push(e) });
    expect(res.statusCode).toBe(503);
    expect(logged).toEqual([expect.objectContaining({ message: 'sync' })]);
  });

  test('a NestJS app whose underlying server is no app fails its start-up with the coded error', async () => {
    const app = { init: async () => undefined, getHttpAdapter: () => ({ getInstance: () => 42 }) };
    const logged: unknown[] = [];
    const res = await inject(app, '/', { onError: (e) => void logged.push(e) });
    expect(res.statusCode).toBe(503);
    expect(logged).toEqual([expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT })]);
  });

  test('a start-up that never ends does not hang requests: the per-request timeout answers 503', async () => {
    const app = fastifyLike(() => new Promise<void>(() => undefined));
    const res = await inject(app, '/', { timeout: 50, onError: () => undefined });
    expect(res.statusCode).toBe(503);
    expect(res.record.doneCount).toBe(1);
  });

  test('a request answered by the timeout while the app was starting is not handed to the app afterwards', async () => {
    const started = gate();
    const app = fastifyLike(() => started.promise);
    const errors: unknown[] = [];
    const res = await inject(app, '/', { timeout: 30, onError: (e) => void errors.push(e) });
    expect(res.statusCode).toBe(503);
    started.open();
    await sleep(20);
    expect(app.served).toBe(0);
    expect(errors.map((e) => (e as Error).message)).toEqual([expect.stringMatching(/timed out/)]);
    expect((await inject(app, '/', { timeout: 30 })).text()).toBe('hello');
  });

  test('a start-up that fails after the request was answered by the timeout adds no second answer or error', async () => {
    const started = gate();
    const app = fastifyLike(() => started.promise);
    const errors: unknown[] = [];
    const res = await inject(app, '/', { timeout: 30, onError: (e) => void errors.push(e) });
    expect(res.statusCode).toBe(503);
    const reason = new Error('late failure');
    started.fail(reason);
    await sleep(20);
    // The timeout, then the start-up failure itself: nothing about writing to a finished response.
    expect(errors).toEqual([expect.objectContaining({ message: expect.stringMatching(/timed out/) }), reason]);
  });

  test('a real Fastify: onReady runs once for concurrent first requests', async () => {
    const app = fastify5();
    let readies = 0;
    app.addHook('onReady', async () => {
      readies++;
      await sleep(10);
    });
    app.get('/', async () => ({ ok: true }));
    try {
      const all = await Promise.all(Array.from({ length: 4 }, () => inject(app, '/')));
      expect(all.map((r) => r.statusCode)).toEqual([200, 200, 200, 200]);
      expect(readies).toBe(1);
    } finally {
      await app.close();
    }
  });

  test('a real Hapi: onPreStart runs once for concurrent first requests', async () => {
    const server = Hapi.server({ debug: false });
    let starts = 0;
    server.ext('onPreStart', async () => {
      starts++;
      await sleep(10);
    });
    server.route({ method: 'GET', path: '/', handler: () => 'ok' });
    try {
      const all = await Promise.all(Array.from({ length: 4 }, () => inject(server, '/', { native: true })));
      expect(all.map((r) => r.text())).toEqual(['ok', 'ok', 'ok', 'ok']);
      expect(starts).toBe(1);
    } finally {
      await server.stop();
    }
  });
});

describe('detection', () => {
  test('Koa-style callback() is composed once, not per request (P18)', async () => {
    let composed = 0;
    const app = { use: () => app, callback: () => (composed++, hello) };
    await inject(app, '/');
    await inject(app, '/', { native: true });
    await inject(app, '/');
    expect(composed).toBe(1);
  });

  test.each([
    ['a (req, res) listener', hello],
    ['an Express-style (req, res, next) function', (_req: IncomingMessage, res: ServerResponse, _next: unknown) => void res.end('hello')],
    ['a Polka-style { handler }', { handler: hello }],
    ['a Restana-style { handle }', { handle: hello }],
    ['a Fetch handler (request) => Response', (_request: Request) => new Response('hello')],
    ['an object with .fetch (Hono)', { fetch: (_request: Request) => new Response('hello') }],
  ] as [string, AppLike][])('%s', async (_name, app) => {
    const res = await inject(app, '/');
    expect(res.text()).toBe('hello');
    expect(res.record.doneCount).toBe(1);
  });

  test.each([
    ['undefined', undefined, 'got undefined'],
    ['null', null, 'got null'],
    ['a number', 42, 'got number'],
    ['a string', 'app.js', 'got string'],
    ['an array', [hello], 'got an array'],
    ['an object that is no app', { listen: 1, routes: [] }, 'got an object with keys [listen, routes]'],
  ])('%s is refused at once with ERR_ISAPI_INVALID_ARGUMENT, naming what was expected', (_name, value, got) => {
    let error: unknown;
    try {
      toRequestListener(value as AppLike);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IsapiError);
    expect(error).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
    const message = (error as Error).message;
    expect(message).toContain('expected a (req, res) listener');
    expect(message).toMatch(/Express.*Koa.*Fastify.*Hapi.*NestJS/);
    expect(message).toContain('Fetch handler');
    expect(message).toContain(got);
  });

  test('SimpleHandler refuses a non-app when it is built, not on the first request', () => {
    expect(() => new SimpleHandler({} as AppLike)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  });

  test('an adapter that keeps returning adapters is refused, not followed forever', async () => {
    const loop: { init(): Promise<void>; getHttpAdapter(): { getInstance(): unknown } } = { init: async () => undefined, getHttpAdapter: () => ({ getInstance: () => loop }) };
    const logged: unknown[] = [];
    const res = await inject(loop, '/', { onError: (e) => void logged.push(e) });
    expect(res.statusCode).toBe(503);
    expect(logged).toEqual([expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringMatching(/nests too deeply/) })]);
  });
});
