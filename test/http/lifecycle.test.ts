/**
 * The lifecycle of one exchange, on MockEcb and on EmulatedHost (issue: "The lifecycle. Each of these is a test").
 * On every path: exactly one DONE_WITH_SESSION, with a status that tells the truth, and no rule breach.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HSE_STATUS_ERROR, HSE_STATUS_PENDING, HSE_STATUS_SUCCESS, HSE_STATUS_SUCCESS_AND_KEEP_CONN } from '../../src/ecb/constants.js';
import { AppRunner, FORMS, type App } from '../support/run-app.js';

function recordEvents(req: IncomingMessage, res: ServerResponse, events: string[]): void {
  for (const name of ['finish', 'close', 'error']) res.on(name, () => events.push(`res:${name}`));
  for (const name of ['aborted', 'error', 'close']) req.on(name, (e?: NodeJS.ErrnoException) => events.push(`req:${name}${e?.code ? ':' + e.code : ''}`));
}

const runners: AppRunner[] = [];
function runner(app: App, options: ConstructorParameters<typeof AppRunner>[1] = {}): AppRunner {
  const r = new AppRunner(app, options);
  runners.push(r);
  return r;
}
afterAll(() => runners.forEach((r) => r.close()));

describe.each(FORMS)('exchange lifecycle on %s', (form) => {
  test("'finish' fires once, then 'close' once, then req 'close'; DONE once with keep-conn", async () => {
    const events: string[] = [];
    const r = await runner((req, res) => {
      recordEvents(req, res, events);
      res.end('ok');
    }).run(form, { url: '/' });
    expect(events).toEqual(['res:finish', 'res:close', 'req:close']);
    expect(r.procResult).toBe(HSE_STATUS_PENDING);
    expect(r.doneCount).toBe(1);
    expect(r.doneStatus).toBe(HSE_STATUS_SUCCESS_AND_KEEP_CONN);
    expect(r.keepConn).toBe(true);
    expect(r.violations).toEqual([]);
  });

  test('the handler settles on finish, close and error: nothing stays in flight', async () => {
    const app: App = (req, res) => {
      if (req.url === '/destroy') return void res.destroy();
      if (req.url === '/throw') throw new Error('x');
      res.end();
    };
    const run = runner(app);
    for (const url of ['/ok', '/destroy', '/throw']) await run.run(form, { url });
    expect(run.extension.handler.inFlight).toBe(0);
  });

  test('a synchronous throw before the head gives a 500 with a generic body; the stack goes to the log only', async () => {
    const logged: unknown[] = [];
    const r = await runner(
      (_req, res) => {
        res.setHeader('X-Leak', 'secret');
        throw new Error('database password is hunter2');
      },
      { onError: (e) => logged.push(e) },
    ).run(form, { url: '/' });
    expect(r.status).toBe('500 Internal Server Error');
    expect(r.body.toString()).toBe('Internal Server Error\n');
    expect(r.headerBlock).not.toContain('X-Leak');
    expect((logged[0] as Error).message).toBe('database password is hunter2');
    expect(r.doneCount).toBe(1);
    expect(r.violations).toEqual([]);
  });

  test('exposeErrors puts the stack in the 500 body (development only)', async () => {
    const r = await runner(() => Promise.reject(new Error('dev detail')), { exposeErrors: true }).run(form, { url: '/' });
    expect(r.status).toBe('500 Internal Server Error');
    expect(r.body.toString()).toContain('Error: dev detail');
  });

  test('a rejected promise before the head gives a 500', async () => {
    const r = await runner(async () => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      throw new Error('async');
    }).run(form, { url: '/' });
    expect(r.status).toBe('500 Internal Server Error');
    expect(r.doneCount).toBe(1);
  });

  test('an error after the head closes the connection and ends the session with HSE_STATUS_ERROR', async () => {
    const events: string[] = [];
    const r = await runner(async (req, res) => {
      recordEvents(req, res, events);
      res.writeHead(200, { 'Content-Length': 10 });
      res.write('part');
      await new Promise((resolve) => setTimeout(resolve, 2));
      throw new Error('late');
    }).run(form, { url: '/' });
    expect(r.status).toBe('200 OK');
    expect(r.body.toString()).toBe('part');
    expect(r.closedConnection).toBe(true);
    expect(r.doneStatus).toBe(HSE_STATUS_ERROR);
    expect(r.doneCount).toBe(1);
    expect(events).not.toContain('res:finish');
    expect(events).toContain('res:close');
  });

  test('res.destroy() does the same as an error after the head', async () => {
    const events: string[] = [];
    const r = await runner((req, res) => {
      recordEvents(req, res, events);
      res.write('a');
      setTimeout(() => res.destroy(), 2);
    }).run(form, { url: '/' });
    expect(r.closedConnection).toBe(true);
    expect(r.doneStatus).toBe(HSE_STATUS_ERROR);
    expect(r.doneCount).toBe(1);
    expect(events.filter((e) => e === 'res:close')).toHaveLength(1);
    expect(events).not.toContain('res:finish');
  });

  test('res.destroy() before the head sends no head at all and closes', async () => {
    const r = await runner((_req, res) => void res.destroy()).run(form, { url: '/' });
    expect(r.status).toBeNull();
    expect(r.closedConnection).toBe(true);
    expect(r.doneStatus).toBe(HSE_STATUS_ERROR);
  });

  test("a WriteClient failure destroys the socket: res 'close' without 'finish', req 'aborted'", async () => {
    const events: string[] = [];
    const r = await runner((req, res) => {
      recordEvents(req, res, events);
      res.write(Buffer.alloc(1000, 1));
      res.end(Buffer.alloc(1000, 2));
    }).run(form, { url: '/' }, { failWritesAfterBytes: 500 });
    expect(events).toContain('res:close');
    expect(events).not.toContain('res:finish');
    expect(events).toContain('req:aborted');
    expect(r.doneStatus).toBe(HSE_STATUS_ERROR);
    expect(r.doneCount).toBe(1);
  });

  test('the per-request timeout answers 503 when the app never sends its head', async () => {
    const r = await runner(() => undefined, { timeout: 30 }).run(form, { url: '/' });
    expect(r.status).toBe('503 Service Unavailable');
    expect(r.headerBlock).toContain('Retry-After: 1\r\n');
    expect(r.doneCount).toBe(1);
  });

  test('the per-request timeout closes the connection when the head was already sent', async () => {
    const r = await runner((_req, res) => void res.write('started'), { timeout: 30 }).run(form, { url: '/' });
    expect(r.status).toBe('200 OK');
    expect(r.closedConnection).toBe(true);
    expect(r.doneStatus).toBe(HSE_STATUS_ERROR);
  });

  test('timeout: 0 disables the timer', async () => {
    const r = await runner((_req, res) => void setTimeout(() => res.end('late'), 40), { timeout: 0 }).run(form, { url: '/' });
    expect(r.body.toString()).toBe('late');
  });

  test("a client gone mid-upload: req 'aborted' and an ECONNRESET error, as on node:http", async () => {
    const events: string[] = [];
    let received = 0;
    const r = await runner((req, res) => {
      recordEvents(req, res, events);
      req.on('data', (c: Buffer) => (received += c.length));
      req.on('error', () => undefined);
    }).run(form, { method: 'POST', url: '/up', body: Buffer.alloc(300_000), abortAfterBytes: 100_000 });
    expect(received).toBe(100_000);
    expect(events).toEqual(expect.arrayContaining(['req:aborted', 'req:error:ECONNRESET', 'res:close']));
    expect(r.doneStatus).toBe(HSE_STATUS_ERROR);
    expect(r.doneCount).toBe(1);
  });

  test('maxBodySize answers 413 without reading a body it knows is too large', async () => {
    let called = false;
    const r = await runner(
      () => {
        called = true;
      },
      { maxBodySize: 1000 },
    ).run(form, { method: 'POST', url: '/', body: Buffer.alloc(100_000) });
    expect(called).toBe(false);
    expect(r.status).toBe('413 Payload Too Large');
    expect(r.keepConn).toBe(false);
    expect(r.doneCount).toBe(1);
  });

  test('maxBodySize stops a body of unknown length once it passes the limit', async () => {
    async function* body(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 50; i++) yield Buffer.alloc(10_000);
    }
    const r = await runner(
      // Two parameters: a function of one parameter is taken for a Fetch handler (toRequestListener).
      (req, _res) => {
        req.resume();
      },
      { maxBodySize: 60_000 },
    ).run(form, { method: 'POST', url: '/', body: body(), unknownLength: true });
    expect(r.status).toBe('413 Payload Too Large');
    expect(r.doneCount).toBe(1);
  });

  test('an unread small body is drained so the connection stays usable; the session still ends once', async () => {
    const r = await runner((_req, res) => res.end('ignored your body')).run(form, { method: 'POST', url: '/', body: Buffer.alloc(200_000, 7) });
    expect(r.body.toString()).toBe('ignored your body');
    expect(r.closedConnection).toBe(false);
    expect(r.doneStatus).toBe(HSE_STATUS_SUCCESS_AND_KEEP_CONN);
  });

  test('an unread body above maxDrainBytes closes the connection instead of reading it', async () => {
    const r = await runner((_req, res) => res.end('no'), { maxDrainBytes: 1000 }).run(form, { method: 'POST', url: '/', body: Buffer.alloc(200_000) });
    expect(r.closedConnection).toBe(true);
    expect(r.doneStatus).toBe(HSE_STATUS_SUCCESS);
    expect(r.doneCount).toBe(1);
  });

  test('the request body is read only as fast as the app consumes it', async () => {
    let pausedAt = -1;
    const r = await runner((req, res) => {
      req.pause();
      setTimeout(() => {
        pausedAt = (req.socket as unknown as { bytesRead: number }).bytesRead;
        const parts: Buffer[] = [];
        req.on('data', (c: Buffer) => parts.push(c));
        req.on('end', () => res.end(String(Buffer.concat(parts).length)));
        req.resume();
      }, 20);
    }).run(form, { method: 'POST', url: '/', body: Buffer.alloc(5 * 1024 * 1024, 1) });
    // Before the app read anything, only the read-ahead (lpbData) was in memory: no ReadClient ran ahead.
    expect(pausedAt).toBe(49152);
    expect(r.body.toString()).toBe(String(5 * 1024 * 1024));
  });

  test('dwHttpStatusCode and lpszLogData reach the host; the log note is configurable and truncated safely', async () => {
    const r = await runner((_req, res) => {
      res.statusCode = 404;
      res.end('nope');
    }, { logNote: (req, res) => `${req.method} ${res.statusCode} ` + 'ü'.repeat(50) }).run(form, { url: '/missing' });
    expect(r.httpStatusCode).toBe(404);
    expect(Buffer.byteLength(r.logData)).toBeLessThanOrEqual(79);
    expect(r.logData.startsWith('GET 404 üü')).toBe(true);
  });
});
