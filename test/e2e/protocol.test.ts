/**
 * createServer end to end, with real clients (global fetch = undici, node:http, raw sockets): every request goes
 * TCP → strict parser → EmulatedHost native ECB → createExtension's native HttpExtensionProc → SimpleHandler → app.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { IsapiIncomingMessage } from '../../src/http/exchange.js';
import { collect, delay, parseResponses, rawConnect, rawExchange, start, type Started } from './support.js';

type Req = IsapiIncomingMessage;
const isapi = (req: IncomingMessage): Req['isapi'] => (req as Req).isapi;

describe('the basic contract', () => {
  let s: Started;
  const seen: { url?: string; version?: string; remoteAddress?: string; remotePort?: string; socketPort?: number }[] = [];
  beforeAll(async () => {
    s = await start((req: IncomingMessage, res: ServerResponse) => {
      seen.push({
        url: req.url,
        version: req.httpVersion,
        remoteAddress: isapi(req).serverVariable('REMOTE_ADDR') ?? undefined,
        remotePort: isapi(req).serverVariable('REMOTE_PORT') ?? undefined,
        socketPort: req.socket.remotePort,
      });
      if (req.url === '/chunked') {
        res.setHeader('Content-Type', 'text/plain');
        res.write('one,');
        setTimeout(() => {
          res.write('two,');
          setTimeout(() => res.end('three'), 10);
        }, 10);
        return;
      }
      if (req.url === '/echo') {
        const parts: Buffer[] = [];
        req.on('data', (c: Buffer) => parts.push(c));
        req.on('end', () => {
          const body = Buffer.concat(parts);
          res.setHeader('Content-Length', body.length);
          res.setHeader('X-Total-Bytes', String(isapi(req).ecb.totalBytes));
          res.setHeader('X-Available', String(isapi(req).ecb.availableBytes));
          res.end(body);
        });
        return;
      }
      const body = `hello ${req.method} ${req.url}`;
      res.setHeader('Content-Type', 'text/plain');
      res.setHeader('Content-Length', Buffer.byteLength(body));
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });
  afterAll(() => s.close());
  beforeEach(() => {
    seen.length = 0;
  });

  test('GET: IIS builds the head (status line from pszStatus, its own Server and Date), the app sees the real socket', async () => {
    const res = await fetch(s.url('/a/b?c=1'));
    expect(res.status).toBe(200);
    expect(res.headers.get('server')).toBe('Microsoft-IIS/10.0');
    expect(res.headers.get('date')).toMatch(/GMT$/);
    expect(await res.text()).toBe('hello GET /a/b?c=1');
    expect(seen[0]).toMatchObject({ url: '/a/b?c=1', version: '1.1', remoteAddress: '127.0.0.1' });
    expect(Number(seen[0]!.remotePort)).toBe(seen[0]!.socketPort);
  });

  test('keep-alive: several requests reuse one TCP connection (node:http Agent and fetch)', async () => {
    let connections = 0;
    const count = (): void => void connections++;
    s.server.on('connection', count);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 5; i++) {
      const body = await new Promise<string>((resolve, reject) => {
        http.get(s.url(`/k${i}`), { agent }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve(text));
        }).on('error', reject);
      });
      expect(body).toBe(`hello GET /k${i}`);
    }
    agent.destroy();
    expect(connections).toBe(1);
    expect(new Set(seen.map((x) => x.remotePort)).size).toBe(1);

    connections = 0;
    for (let i = 0; i < 4; i++) expect(await (await fetch(s.url(`/f${i}`))).text()).toBe(`hello GET /f${i}`);
    expect(connections).toBe(1);
    s.server.removeListener('connection', count);
  });

  test('a chunked response is written as the app writes it, and the connection carries the next request', async () => {
    const socket = await rawConnect(s.port);
    const answer = collect(socket, { until: (b) => b.toString('latin1').includes('hello GET /after') });
    socket.write('GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n');
    await delay(50);
    socket.write('GET /after HTTP/1.1\r\nHost: x\r\n\r\n');
    const { data } = await answer;
    socket.destroy();
    const [first, second] = parseResponses(data);
    expect(first!.chunked).toBe(true);
    expect(first!.headers.connection).toBeUndefined();
    expect(first!.body.toString()).toBe('one,two,three');
    expect(second!.body.toString()).toBe('hello GET /after');
    // The fetch side sees the same thing.
    const res = await fetch(s.url('/chunked'));
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    expect(await res.text()).toBe('one,two,three');
  });

  test('HEAD: headers with Content-Length and no body bytes, even pipelined before a GET', async () => {
    const res = await fetch(s.url('/h'), { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String('hello HEAD /h'.length));
    expect(await res.text()).toBe('');
    const { data } = await rawExchange(s.port, 'HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const [head, get] = parseResponses(data, ['HEAD', 'GET']);
    expect(head!.statusCode).toBe(200);
    expect(get!.body.toString()).toBe('hello GET /g');
  });

  test('HTTP/1.0: answered (HTTP/1.1 status line, as http.sys does) and the connection closes after the body', async () => {
    const { data, closed } = await rawExchange(s.port, 'GET /old HTTP/1.0\r\n\r\n');
    expect(closed).toBe(true);
    const [res] = parseResponses(data);
    expect(res!.statusLine).toBe('HTTP/1.1 200 OK');
    expect(res!.headers.connection).toBe('close');
    expect(res!.body.toString()).toBe('hello GET /old');
    expect(seen[0]!.version).toBe('1.0');
  });

  test('pipelined requests are answered in order, though the first is the slowest', async () => {
    const s2 = await start(async (req: IncomingMessage, res: ServerResponse) => {
      const parts: Buffer[] = [];
      for await (const c of req) parts.push(c as Buffer);
      await delay(req.url === '/1' ? 60 : req.url === '/2' ? 20 : 0);
      res.end(`${req.url}:${Buffer.concat(parts).toString()}`);
    });
    try {
      const pipeline =
        'GET /1 HTTP/1.1\r\nHost: x\r\n\r\n' +
        'POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello' +
        'POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' +
        'GET /4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
      const { data, closed } = await rawExchange(s2.port, pipeline);
      expect(closed).toBe(true);
      expect(parseResponses(data).map((r) => r.body.toString())).toEqual(['/1:', '/2:hello', '/3:abc', '/4:']);
    } finally {
      await s2.close();
    }
  });

  test('request bodies: Content-Length within the read-ahead arrives whole in lpbData; chunked is de-chunked with cbTotalBytes 0xFFFFFFFF', async () => {
    const small = await fetch(s.url('/echo'), { method: 'POST', body: 'x'.repeat(1000) });
    expect(await small.text()).toBe('x'.repeat(1000));
    expect(small.headers.get('x-total-bytes')).toBe('1000');
    expect(small.headers.get('x-available')).toBe('1000');

    const big = Buffer.alloc(200_000, 'y');
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < big.length; i += 50_000) controller.enqueue(big.subarray(i, i + 50_000));
        controller.close();
      },
    });
    const chunked = await fetch(s.url('/echo'), { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(Buffer.from(await chunked.arrayBuffer()).equals(big)).toBe(true);
    expect(chunked.headers.get('x-total-bytes')).toBe(String(0xffffffff));
    expect(chunked.headers.get('x-available')).toBe('49152');
  });

  test('the readAhead option is uploadReadAheadSize: cbAvailable follows it', async () => {
    const s2 = await start((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      req.on('end', () => res.end(`${isapi(req).ecb.availableBytes}/${isapi(req).ecb.totalBytes}`));
    }, { readAhead: 1024 });
    try {
      const res = await fetch(s2.url('/'), { method: 'POST', body: 'z'.repeat(10_000) });
      expect(await res.text()).toBe('1024/10000');
    } finally {
      await s2.close();
    }
  });
});

describe('what the emulated IIS answers itself', () => {
  let s: Started;
  let calls = 0;
  beforeAll(async () => {
    s = await start((req: IncomingMessage, res: ServerResponse) => {
      calls++;
      req.resume();
      req.on('end', () => res.end('ok'));
    });
  });
  afterAll(() => s.close());

  const malformed: [string, string, number][] = [
    ['a malformed request line', 'GARBAGE\r\n\r\n', 400],
    ['two spaces in the request line', 'GET  / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['no HTTP version (HTTP/0.9)', 'GET /\r\n\r\n', 400],
    ['whitespace before a header colon', 'GET / HTTP/1.1\r\nHost : x\r\n\r\n', 400],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n', 400],
    ['a bare LF', 'GET / HTTP/1.1\nHost: x\n\n', 400],
    ['a control character in a header value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n', 400],
    ['a header line without a colon', 'GET / HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n', 400],
    ['an invalid Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n', 400],
    ['differing Content-Lengths', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 400],
    ['Transfer-Encoding with Content-Length (smuggling)', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['a transfer coding other than chunked', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 501],
    ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['two Host headers', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['HTTP/2.0 on an HTTP/1 connection', 'GET / HTTP/2.0\r\nHost: x\r\n\r\n', 505],
    ['a head larger than 16 KiB', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`, 431],
  ];

  test.each(malformed)('%s → the status, the connection closed, the app never called, the server still serving', async (_name, request, status) => {
    const before = calls;
    const { data, closed } = await rawExchange(s.port, request);
    const [res] = parseResponses(data);
    expect(res!.statusCode).toBe(status);
    expect(res!.headers.connection).toBe('close');
    expect(res!.headers.server).toBe('Microsoft-HTTPAPI/2.0');
    expect(closed).toBe(true);
    expect(calls).toBe(before);
    expect(await (await fetch(s.url('/'))).text()).toBe('ok');
  });

  test('a malformed chunked body mid-request fails the extension read and closes the connection; the server survives', async () => {
    const { closed } = await rawExchange(s.port, 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n');
    expect(closed).toBe(true);
    expect(await (await fetch(s.url('/'))).text()).toBe('ok');
  });

  test("'clientError' listeners take charge of malformed requests, as on node:http", async () => {
    const errors: { code: string; statusCode: number }[] = [];
    const onClientError = (error: { code: string; statusCode: number }, socket: import('node:net').Socket): void => {
      errors.push({ code: error.code, statusCode: error.statusCode });
      socket.end('HTTP/1.1 400 Mine\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    };
    s.server.on('clientError', onClientError);
    try {
      const { text } = await rawExchange(s.port, 'GET / HTTP/1.1\r\nHost : x\r\n\r\n');
      expect(text).toMatch(/^HTTP\/1\.1 400 Mine/);
      expect(errors).toEqual([{ code: 'HPE_INVALID_HEADER_TOKEN', statusCode: 400 }]);
    } finally {
      s.server.removeListener('clientError', onClientError);
    }
  });

  test('a WebSocket upgrade gets 501 with a body that says ISAPI cannot upgrade; an h2c offer is ignored', async () => {
    const { data } = await rawExchange(
      s.port,
      'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      { until: (b) => b.includes('</html>') },
    );
    const [res] = parseResponses(data);
    expect(res!.statusCode).toBe(501);
    expect(res!.body.toString()).toMatch(/cannot take over the connection/);
    const { data: h2c } = await rawExchange(s.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n', {
      until: (b) => b.toString().endsWith('ok'),
    });
    expect(parseResponses(h2c)[0]!.body.toString()).toBe('ok');
  });

  test('Expect: 100-continue is answered with 100 Continue before the body is read, then the body flows', async () => {
    const socket = await rawConnect(s.port);
    const interim = collect(socket, { until: (b) => b.includes('\r\n\r\n') });
    socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    expect((await interim).data.toString()).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    const final = collect(socket, { until: (b) => b.toString().endsWith('ok') });
    socket.write('hello');
    const [res] = parseResponses((await final).data);
    expect(res!.statusCode).toBe(200);
    socket.destroy();
  });

  test('Expect: 100-continue when the app answers without reading (readAhead 0): no 100, the connection closes', async () => {
    const s2 = await start((_req: IncomingMessage, res: ServerResponse) => {
      res.statusCode = 401;
      res.end('no');
    }, { readAhead: 0 });
    try {
      const { data, closed } = await rawExchange(s2.port, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
      expect(data.toString()).not.toContain('100 Continue');
      expect(parseResponses(data)[0]!.statusCode).toBe(401);
      expect(closed).toBe(true);
    } finally {
      await s2.close();
    }
  });

  test('an Expect other than 100-continue gets 417', async () => {
    const { data } = await rawExchange(s.port, 'GET / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n', { until: (b) => b.includes('</html>') });
    expect(parseResponses(data)[0]!.statusCode).toBe(417);
  });
});

describe('mount and server variables', () => {
  test('mount emulates an IIS application: APPL_MD_PATH, the app sees URLs below it, IIS answers 404 outside it', async () => {
    const got: { url?: string; appl?: string | null; mount?: string }[] = [];
    const s = await start((req: IncomingMessage, res: ServerResponse) => {
      got.push({ url: req.url, appl: isapi(req).serverVariable('APPL_MD_PATH'), mount: isapi(req).mountPath });
      res.end('in app');
    }, { mount: '/shop/' });
    try {
      expect(await (await fetch(s.url('/shop/cart?id=1'))).text()).toBe('in app');
      expect(await (await fetch(s.url('/SHOP'))).text()).toBe('in app');
      for (const outside of ['/', '/shopping', '/other/shop']) {
        const res = await fetch(s.url(outside));
        expect(res.status).toBe(404);
        expect(res.headers.get('server')).toBe('Microsoft-IIS/10.0');
      }
      expect(got).toEqual([
        { url: '/cart?id=1', appl: '/LM/W3SVC/1/ROOT/shop', mount: '/shop' },
        { url: '/', appl: '/LM/W3SVC/1/ROOT/shop', mount: '/shop' },
      ]);
    } finally {
      await s.close();
    }
  });

  test('serverVariables reach the app (AUTH_USER, HTTPS) while REMOTE_ADDR, REMOTE_PORT, LOCAL_ADDR and SERVER_PORT come from the socket', async () => {
    let seen: Record<string, unknown> = {};
    const s = await start((req: IncomingMessage, res: ServerResponse) => {
      const v = (n: string): string | null => isapi(req).serverVariable(n);
      seen = {
        user: isapi(req).user?.name,
        https: v('HTTPS'),
        encrypted: (req.socket as { encrypted?: boolean }).encrypted,
        remote: v('REMOTE_ADDR'),
        remotePort: v('REMOTE_PORT'),
        socketRemotePort: String(req.socket.remotePort),
        local: v('LOCAL_ADDR'),
        serverPort: v('SERVER_PORT'),
        custom: v('MY_VAR'),
      };
      res.end();
    }, { serverVariables: { AUTH_USER: 'CORP\\ann', AUTH_TYPE: 'Negotiate', HTTPS: 'on', MY_VAR: 'x' } });
    try {
      await (await fetch(s.url('/'))).text();
      expect(seen).toMatchObject({ user: 'CORP\\ann', https: 'on', encrypted: true, remote: '127.0.0.1', local: '127.0.0.1', serverPort: String(s.port), custom: 'x' });
      expect(seen.remotePort).toBe(seen.socketRemotePort);
    } finally {
      await s.close();
    }
  });
});
