/**
 * Pins, on the running Node, every private HTTP/stream internal the library relies on (pitfalls P3 and P17).
 *
 * src/http/node-internals.ts is the one module allowed to touch them (test/http/pitfalls.test.ts "P17" checks that
 * rule). Each test below states one assumption, so a Node upgrade that moves an internal fails here, by name,
 * instead of somewhere deep inside a request. When CI gains a Node major, run this file on it first, then add the
 * major to VERIFIED_NODE_MAJORS.
 */
import { EventEmitter } from 'node:events';
import http, { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { forwardDrain, needDrainSymbol, renderedHead, setRawHeaders } from '../../src/http/node-internals.js';

/** Node majors on which every pin in this file was verified. */
const VERIFIED_NODE_MAJORS = [20];

interface Write {
  chunk: unknown;
  encoding: string;
}

/** A socket that records what Node writes, and completes each write only when told to (or at once). */
class RecordingSocket extends Duplex {
  readonly writes: Write[] = [];
  private readonly held: (() => void)[] = [];
  holdWrites = false;
  failWrites = false;

  constructor(highWaterMark = 16 * 1024) {
    super({ decodeStrings: false, writableHighWaterMark: highWaterMark, allowHalfOpen: true });
  }

  override _read(): void {}

  override _write(chunk: unknown, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writes.push({ chunk, encoding });
    if (this.failWrites) return callback(new Error('write failed'));
    if (this.holdWrites) this.held.push(() => callback());
    else callback();
  }

  /** Complete every held write and stop holding new ones. */
  release(): void {
    this.holdWrites = false;
    for (const done of this.held.splice(0)) done();
  }
}

function exchange(options: { method?: string; major?: number; minor?: number; headers?: string[]; highWaterMark?: number } = {}): {
  socket: RecordingSocket;
  req: IncomingMessage;
  res: ServerResponse;
} {
  const socket = new RecordingSocket(options.highWaterMark);
  const req = new IncomingMessage(socket as unknown as Socket);
  req.method = options.method ?? 'GET';
  req.httpVersionMajor = options.major ?? 1;
  req.httpVersionMinor = options.minor ?? 1;
  req.httpVersion = `${req.httpVersionMajor}.${req.httpVersionMinor}`;
  setRawHeaders(req, options.headers ?? ['Host', 'localhost']);
  const res = new ServerResponse(req);
  res.assignSocket(socket as unknown as Socket);
  return { socket, req, res };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe(`Node ${process.versions.node}: the private internals isapi-http relies on`, () => {
  test('this Node major is one on which these pins were verified (and satisfies engines: >=20)', () => {
    const major = Number(process.versions.node.split('.')[0]);
    expect(major).toBeGreaterThanOrEqual(20);
    expect(VERIFIED_NODE_MAJORS).toContain(major);
  });

  describe('res._header (renderedHead)', () => {
    test('is null before the head is rendered, and the exact head after', () => {
      const { res } = exchange();
      expect((res as unknown as { _header: unknown })._header).toBeNull();
      expect(renderedHead(res)).toBeNull();
      res.writeHead(201, { 'X-A': '1', 'Content-Length': 0 });
      const head = renderedHead(res);
      expect(typeof head).toBe('string');
      expect(head).toBe((res as unknown as { _header: string })._header);
      expect(head?.startsWith('HTTP/1.1 201 Created\r\n')).toBe(true);
      expect(head).toContain('\r\nX-A: 1\r\n');
      expect(head?.endsWith('\r\n\r\n')).toBe(true);
    });

    test('holds headers given only to writeHead (the source of truth for pszHeader, P11)', () => {
      const { res } = exchange();
      res.writeHead(200, ['X-Flat', 'a', 'X-Flat', 'b']);
      expect(res.getHeader('x-flat')).toBeUndefined();
      expect(renderedHead(res)).toContain('X-Flat: a\r\nX-Flat: b\r\n');
    });

    test('is the first thing written to the socket, glued to a string body in one write', async () => {
      const { socket, res } = exchange();
      res.end('body text');
      await tick();
      const head = renderedHead(res) as string;
      const first = socket.writes[0] as Write;
      expect(typeof first.chunk).toBe('string');
      expect(first.chunk).toBe(head + 'body text');
    });

    test('is written alone, as a latin1 string, ahead of a Buffer body', async () => {
      const { socket, res } = exchange();
      res.setHeader('Content-Length', 3);
      res.end(Buffer.from([1, 2, 3]));
      await tick();
      const head = renderedHead(res) as string;
      expect(socket.writes[0]).toEqual({ chunk: head, encoding: 'latin1' });
      expect(Buffer.isBuffer(socket.writes[1]?.chunk)).toBe(true);
    });
  });

  describe('req._addHeaderLines (setRawHeaders)', () => {
    test("exists, and drives the lazy headers/headersDistinct getters with Node's aggregation rules", () => {
      const req = new IncomingMessage(null as unknown as Socket);
      expect(typeof (req as unknown as { _addHeaderLines?: unknown })._addHeaderLines).toBe('function');
      const raw = ['Host', 'h', 'Set-Cookie', 'a=1', 'Content-Type', 'text/plain', 'set-cookie', 'b=2', 'content-type', 'text/html', 'Cookie', 'x=1', 'cookie', 'y=2', 'X-D', '1', 'x-d', '2'];
      setRawHeaders(req, raw);
      expect(req.rawHeaders).toEqual(raw);
      expect(req.headers).toEqual({ host: 'h', 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain', cookie: 'x=1; y=2', 'x-d': '1, 2' });
      expect(req.headersDistinct['content-type']).toEqual(['text/plain', 'text/html']);
    });

    test('headers is a lazy accessor on IncomingMessage.prototype: assigning rawHeaders alone leaves it empty', () => {
      const descriptor = Object.getOwnPropertyDescriptor(http.IncomingMessage.prototype, 'headers');
      expect(typeof descriptor?.get).toBe('function');
      const req = new IncomingMessage(null as unknown as Socket);
      req.rawHeaders = ['Host', 'h'];
      expect(req.headers).toEqual({});
    });

    test('setRawHeaders fails loudly, naming node-internals.ts, on a Node without it', () => {
      expect(() => setRawHeaders({} as IncomingMessage, [])).toThrow(/node-internals/);
    });
  });

  describe('res[kNeedDrain] (needDrainSymbol, forwardDrain)', () => {
    test('is an own symbol of every ServerResponse, false at first, true once the socket refused a write', () => {
      const { res } = exchange({ highWaterMark: 4 });
      const k = needDrainSymbol(res);
      expect(k).not.toBeNull();
      expect((k as symbol).description).toBe('kNeedDrain');
      expect(Object.getOwnPropertySymbols(res)).toContain(k);
      const r = res as unknown as Record<symbol, unknown>;
      expect(r[k as symbol]).toBe(false);
      expect(res.write('more than four bytes')).toBe(false);
      expect(r[k as symbol]).toBe(true);
    });

    test("forwardDrain emits the response's 'drain' once when it waits for one, and never otherwise", async () => {
      const { socket, res } = exchange({ highWaterMark: 4 });
      socket.holdWrites = true;
      let drains = 0;
      res.on('drain', () => drains++);
      forwardDrain(res);
      expect(drains).toBe(0);
      res.write('more than four bytes');
      forwardDrain(res);
      expect(drains).toBe(1);
      forwardDrain(res);
      expect(drains).toBe(1);
      socket.release();
      await tick();
    });

    test("a bare socket 'drain' does not reach the response by itself (the server must forward it)", async () => {
      const { socket, res } = exchange({ highWaterMark: 4 });
      socket.holdWrites = true;
      let drains = 0;
      res.on('drain', () => drains++);
      expect(res.write('more than four bytes')).toBe(false);
      socket.release();
      await tick();
      expect(socket.writableNeedDrain).toBe(false);
      expect(drains).toBe(0);
    });
  });

  describe('socket._httpMessage and assignSocket', () => {
    test('assignSocket sets socket._httpMessage to the response; detachSocket clears it', () => {
      const { socket, res } = exchange();
      expect((socket as unknown as { _httpMessage: unknown })._httpMessage).toBe(res);
      res.detachSocket(socket as unknown as Socket);
      expect((socket as unknown as { _httpMessage: unknown })._httpMessage).toBeNull();
    });

    test("assignSocket makes the socket's 'close' emit the response's 'close' once (onServerResponseClose)", async () => {
      const { socket, res } = exchange();
      let closes = 0;
      res.on('close', () => closes++);
      socket.destroy();
      await tick();
      expect(closes).toBe(1);
    });
  });

  describe('what OutgoingMessage reads from its socket', () => {
    test('end() sets socket._writableState.corked: a socket without _writableState throws (hence a real Duplex)', () => {
      const fake = Object.assign(new EventEmitter(), {
        writable: true,
        destroyed: false,
        writableLength: 0,
        writableCorked: 0,
        write: () => true,
        cork: () => undefined,
        uncork: () => undefined,
        setTimeout: () => undefined,
      });
      const req = new IncomingMessage(null as unknown as Socket);
      req.method = 'GET';
      req.httpVersionMajor = 1;
      req.httpVersionMinor = 1;
      const res = new ServerResponse(req);
      res.assignSocket(fake as unknown as Socket);
      expect(() => res.end('x')).toThrow(/corked/);
    });

    test('writableFinished waits for socket.writableLength to reach 0 (P3, P8)', async () => {
      const { socket, res } = exchange();
      socket.holdWrites = true;
      res.end('x');
      await tick();
      expect(res.writableEnded).toBe(true);
      expect(socket.writableLength).toBeGreaterThan(0);
      expect(res.writableFinished).toBe(false);
      socket.release();
      await tick();
      expect(socket.writableLength).toBe(0);
      expect(res.writableFinished).toBe(true);
    });

    test("socket._hadError suppresses 'finish' after a failed write; without it a failed response still 'finish'es", async () => {
      const outcome = async (hadError: boolean): Promise<string[]> => {
        const { socket, res } = exchange();
        socket.on('error', () => undefined);
        socket.failWrites = true;
        if (hadError) (socket as unknown as { _hadError: boolean })._hadError = true;
        const events: string[] = [];
        res.on('finish', () => events.push('finish'));
        res.on('close', () => events.push('close'));
        res.end('x');
        await tick();
        await tick();
        return events;
      };
      expect(await outcome(true)).not.toContain('finish');
      expect(await outcome(false)).toContain('finish');
    });
  });

  describe("what ServerResponse decides from the request", () => {
    test.each([
      ['HTTP/1.0', 1, 0],
      ['HTTP/2.0 (minor < 1)', 2, 0],
    ])('%s: no chunked encoding by default and no keep-alive', (_name, major, minor) => {
      const { res } = exchange({ major, minor });
      expect(res.useChunkedEncodingByDefault).toBe(false);
      expect(res.shouldKeepAlive).toBe(false);
    });

    test('HTTP/1.1: chunked by default, keep-alive as the server decides', () => {
      const { res } = exchange();
      expect(res.useChunkedEncodingByDefault).toBe(true);
      res.shouldKeepAlive = false;
      res.end('x');
      expect(renderedHead(res)).toContain('\r\nConnection: close\r\n');
    });

    test.each([
      ['HEAD', 200],
      ['GET', 204],
      ['GET', 304],
    ] as const)('%s %d: _hasBody is false and no body byte reaches the socket (P13)', async (method, status) => {
      const { socket, res } = exchange({ method });
      res.statusCode = status;
      res.end('must not be written');
      await tick();
      expect((res as unknown as { _hasBody: boolean })._hasBody).toBe(false);
      const written = socket.writes.map((w) => (typeof w.chunk === 'string' ? w.chunk : Buffer.from(w.chunk as Buffer).toString('latin1'))).join('');
      expect(written).toBe(renderedHead(res));
    });
  });
});
