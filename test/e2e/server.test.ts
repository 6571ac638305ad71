/** createServer's node:http surface: listen forms, events, close semantics, timeouts, options and their errors. */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { createServer, IsapiServer, type AccessLogEntry } from '../../src/index.js';
import { ErrorCodes } from '../../src/errors.js';
import { collect, delay, parseResponses, rawConnect, shutDown, start, waitFor } from './support.js';

const hello = (_req: IncomingMessage, res: ServerResponse): void => void res.end('hello');

async function closed(server: IsapiServer): Promise<void> {
  await shutDown(server);
}

describe('listen, address, events', () => {
  test('listen(port, host, callback), address(), listening, and close(cb) emitting close', async () => {
    // A TypeScript program that annotates http.Server keeps compiling (tsc checks this file).
    const server: http.Server = createServer(hello);
    const events: string[] = [];
    server.on('listening', () => events.push('listening'));
    server.on('close', () => events.push('close'));
    expect(server.listening).toBe(false);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    expect(server.listening).toBe(true);
    const address = server.address() as AddressInfo;
    expect(address).toMatchObject({ address: '127.0.0.1', family: 'IPv4' });
    expect(address.port).toBeGreaterThan(0);
    expect(await (await fetch(`http://127.0.0.1:${address.port}/`)).text()).toBe('hello');
    await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    expect(server.listening).toBe(false);
    expect(events).toEqual(['listening', 'close']);
  });

  test('listen({ port: 0, host }) and listen(0) with a listening event', async () => {
    const a = createServer(hello).listen({ port: 0, host: '127.0.0.1' });
    await once(a, 'listening');
    expect((a.address() as AddressInfo).address).toBe('127.0.0.1');
    const b = createServer(hello).listen(0);
    await once(b, 'listening');
    const port = (b.address() as AddressInfo).port;
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('hello');
    await closed(a);
    await closed(b);
  });

  test("a port in use is an 'error' event (EADDRINUSE), as on node:http", async () => {
    const a = await start(hello);
    const b = createServer(hello);
    b.listen(a.port, '127.0.0.1');
    const [error] = (await once(b, 'error')) as [NodeJS.ErrnoException];
    expect(error.code).toBe('EADDRINUSE');
    // close() on a server that never listened reports ERR_SERVER_NOT_RUNNING, as node:http does, and unloads the extension.
    const [closeError] = await new Promise<[NodeJS.ErrnoException | undefined]>((resolve) => b.close((e) => resolve([e as NodeJS.ErrnoException])));
    expect(closeError?.code).toBe('ERR_SERVER_NOT_RUNNING');
    await a.close();
  });

  test("without a listener, server.on('request') gets the app's req/res; createServer(options, listener) works too", async () => {
    const server = createServer({ keepAliveTimeout: 1000 });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => res.end(`on request ${req.url}`));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    expect(await (await fetch(`http://127.0.0.1:${port}/r`)).text()).toBe('on request /r');
    expect(server.keepAliveTimeout).toBe(1000);
    await closed(server);

    const s2 = await start(null, {});
    const t = createServer({ mount: '/m' }, hello);
    t.listen(0, '127.0.0.1');
    await once(t, 'listening');
    expect(await (await fetch(`http://127.0.0.1:${(t.address() as AddressInfo).port}/m/x`)).text()).toBe('hello');
    await closed(t);
    await s2.close();
  });

  test("two 'request' listeners both run; an async listener's rejection becomes a 500 when it is the only one", async () => {
    const calls: string[] = [];
    const s = await start(null);
    s.server.on('request', () => calls.push('first'));
    s.server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
      calls.push('second');
      res.end('two');
    });
    expect(await (await fetch(s.url('/'))).text()).toBe('two');
    expect(calls).toEqual(['first', 'second']);
    await s.close();

    const failing = await start(async () => {
      throw new Error('boom');
    });
    const res = await fetch(failing.url('/'));
    expect(res.status).toBe(500);
    await failing.close();
  });

  test("an app object (not a function) is adapted like SimpleHandler does: a Fetch-style { fetch }", async () => {
    const s = await start({ fetch: (request: Request) => new Response(`fetch ${new URL(request.url).pathname}`) });
    expect(await (await fetch(s.url('/p'))).text()).toBe('fetch /p');
    await s.close();
  });

  test("'access' logs one entry per request, including IIS's own answers", async () => {
    const s = await start(hello, { mount: '/app' });
    const entries: AccessLogEntry[] = [];
    s.server.on('access', (e: AccessLogEntry) => entries.push(e));
    await (await fetch(s.url('/app/x?y=1'))).text();
    await (await fetch(s.url('/nope'))).text();
    expect(entries.map((e) => [e.method, e.url, e.statusCode, e.byHost])).toEqual([
      ['GET', '/app/x?y=1', 200, false],
      ['GET', '/nope', 404, true],
    ]);
    expect(entries[0]!.bytesSent).toBe(5);
    expect(entries[0]!.ms).toBeGreaterThanOrEqual(0);
    await s.close();
  });
});

describe('closing', () => {
  test('close() lets a request in flight finish (with Connection: close) and closes idle keep-alive connections at once', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const s = await start(async (req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/slow') await gate;
      res.end(`done ${req.url}`);
    });
    const idle = await rawConnect(s.port);
    const idleAnswer = collect(idle, { until: (b) => b.toString().endsWith('done /idle') });
    idle.write('GET /idle HTTP/1.1\r\nHost: x\r\n\r\n');
    await idleAnswer;
    const idleClosed = once(idle, 'close');

    const busy = await rawConnect(s.port);
    const busyAnswer = collect(busy);
    busy.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => s.server.inFlight === 1, 2000, 'the slow request');
    let closeFired = false;
    s.server.close(() => (closeFired = true));
    await idleClosed;
    await delay(20);
    expect(closeFired).toBe(false);
    release();
    const { data, closed: wasClosed } = await busyAnswer;
    const [res] = parseResponses(data);
    expect(res!.body.toString()).toBe('done /slow');
    expect(res!.headers.connection).toBe('close');
    expect(wasClosed).toBe(true);
    await waitFor(() => closeFired && s.server.inFlight === 0, 2000, "close's callback");
  });

  test('closeAllConnections() destroys busy connections: the app sees close, and the server keeps serving', async () => {
    let resClosed = false;
    const s = await start((req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/hang') {
        res.write('partial');
        res.on('close', () => (resClosed = true));
        const tick = setInterval(() => {
          if (res.destroyed || res.writableEnded) return clearInterval(tick);
          res.write('.');
        }, 10);
        return;
      }
      res.end('fine');
    });
    const socket = await rawConnect(s.port);
    const answer = collect(socket);
    socket.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => s.server.inFlight === 1, 2000, 'the hanging request');
    await delay(30);
    s.server.closeAllConnections();
    expect((await answer).closed).toBe(true);
    await waitFor(() => resClosed && s.server.inFlight === 0, 3000, "the app's close");
    expect(await (await fetch(s.url('/'))).text()).toBe('fine');
    await s.close();
  });

  test('closeIdleConnections() closes idle keep-alive connections only', async () => {
    const s = await start(hello);
    const socket = await rawConnect(s.port);
    const answer = collect(socket, { until: (b) => b.toString().endsWith('hello') });
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await answer;
    const gone = once(socket, 'close');
    s.server.closeIdleConnections();
    await gone;
    expect(await (await fetch(s.url('/'))).text()).toBe('hello');
    await s.close();
  });

  test('the server can listen again after close(): a new extension is loaded', async () => {
    const server = createServer(hello);
    for (let i = 0; i < 2; i++) {
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      expect(await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)).text()).toBe('hello');
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('timeouts', () => {
  test('keepAliveTimeout closes an idle keep-alive connection', async () => {
    const s = await start(hello, { keepAliveTimeout: 80 });
    const socket = await rawConnect(s.port);
    const answer = collect(socket, { until: (b) => b.toString().endsWith('hello') });
    const started = Date.now();
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await answer;
    await once(socket, 'close');
    expect(Date.now() - started).toBeGreaterThanOrEqual(75);
    await s.close();
  });

  test('headersTimeout answers 408 to a head that never completes', async () => {
    const s = await start(hello, { headersTimeout: 80 });
    const socket = await rawConnect(s.port);
    const answer = collect(socket);
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
    const { data, closed: wasClosed } = await answer;
    expect(parseResponses(data)[0]!.statusCode).toBe(408);
    expect(wasClosed).toBe(true);
    await s.close();
  });

  test('requestTimeout: a body that stops arriving ends the connection; the app sees its request aborted', async () => {
    const events: string[] = [];
    const s = await start((req: IncomingMessage, res: ServerResponse) => {
      events.push(`app ${req.url}`);
      req.on('aborted', () => events.push(`aborted ${req.url}`));
      req.on('error', () => undefined);
      req.resume();
      req.on('end', () => res.end('complete'));
    }, { requestTimeout: 150 });
    // Stalled past the read-ahead: the extension runs, and its next ReadClient fails.
    const past = await rawConnect(s.port);
    const pastAnswer = collect(past);
    past.write('POST /past HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(60_000));
    expect((await pastAnswer).closed).toBe(true);
    await waitFor(() => events.includes('aborted /past') && s.server.inFlight === 0, 3000, 'the abort');
    // Stalled inside the read-ahead: IIS never calls the extension, it only drops the connection.
    const within = await rawConnect(s.port);
    const withinAnswer = collect(within);
    within.write('POST /within HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(1000));
    expect((await withinAnswer).closed).toBe(true);
    expect(events).not.toContain('app /within');
    await s.close();
  });

  test("setTimeout(ms, cb): an idle socket emits the server's 'timeout' with the socket", async () => {
    const s = await start(hello);
    const timedOut: Socket[] = [];
    s.server.setTimeout(60, (socket) => {
      timedOut.push(socket);
      socket.destroy();
    });
    expect(s.server.timeout).toBe(60);
    const socket = await rawConnect(s.port);
    await once(socket, 'close');
    expect(timedOut).toHaveLength(1);
    await s.close();
  });

  test('maxRequestsPerSocket: the last allowed response says Connection: close', async () => {
    const s = await start(hello);
    s.server.maxRequestsPerSocket = 2;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const heads: (string | undefined)[] = [];
    for (let i = 0; i < 2; i++) {
      await new Promise<void>((resolve) => {
        http.get(s.url('/'), { agent }, (res) => {
          heads.push(res.headers.connection);
          res.resume();
          res.on('end', resolve);
        });
      });
    }
    agent.destroy();
    expect(heads).toEqual([undefined, 'close']);
    await s.close();
  });
});

describe('options are checked, with coded errors', () => {
  test.each([
    [{ handler: 'threadpool' }, ErrorCodes.INVALID_ARGUMENT, /give module/],
    [{ handler: 'cluster' }, ErrorCodes.INVALID_ARGUMENT, /handler must be/],
    [{ workers: 2 }, ErrorCodes.INVALID_ARGUMENT, /workers applies to handler "threadpool"/],
    [{ mount: 'shop' }, ErrorCodes.INVALID_ARGUMENT, /must start with "\/"/],
    [{ mount: '/a/../b' }, ErrorCodes.INVALID_ARGUMENT, /not a plain virtual path/],
    [{ serverVariables: { REMOTE_ADDR: '1.2.3.4' } }, ErrorCodes.INVALID_ARGUMENT, /real TCP connection/],
    [{ serverVariables: { APPL_MD_PATH: '/LM/W3SVC/1/ROOT/x' } }, ErrorCodes.INVALID_ARGUMENT, /mount option/],
    [{ serverVariables: { AUTH_USER: 5 } }, ErrorCodes.INVALID_ARGUMENT, /string or null/],
    [{ readAhead: -1 }, ErrorCodes.INVALID_ARGUMENT, /readAhead must be an integer/],
    [{ maxHeaderSize: 0 }, ErrorCodes.INVALID_ARGUMENT, /maxHeaderSize/],
    [{ insecureHTTPParser: true }, ErrorCodes.NOT_SUPPORTED, /parses strictly/],
    [{ IncomingMessage: 'a class' }, ErrorCodes.NOT_SUPPORTED, /real IncomingMessage/],
    [{ extension: {} }, ErrorCodes.INVALID_ARGUMENT, /IsapiExtension/],
  ])('%j → %s', (options, code, message) => {
    let error: unknown;
    try {
      createServer(hello, options as never);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code });
    expect((error as Error).message).toMatch(message);
  });

  test('an unknown option is named; a value that is no app is refused', () => {
    expect(() => createServer(hello, { mout: '/x' } as never)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringMatching(/"mout"/) }));
    expect(() => createServer(42 as never)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
    expect(() => createServer(hello, 'x' as never)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  });
});
