/**
 * The differential conformance table (issue requirement). For every row, the response a client receives through
 * the ISAPI path — the status line IIS builds from pszStatus, the header block, the body bytes exactly as written
 * with WriteClient — must equal, byte for byte, what a raw loopback client receives from `node:http` for the same
 * app and the same request bytes. Only Date, Connection, Keep-Alive and Server are left out, on both sides
 * (support/conformance.ts says why).
 *
 * The ISAPI side runs `createExtension(new SimpleHandler(app))` on MockEcb (dispatch) and on EmulatedHost (real
 * native ECBs, through `nativeEntryPoints().HttpExtensionProc`); a subset also runs from 8 pthreads of the C
 * reference host. Every run must end its session exactly once, without a single ISAPI rule breach, and send the
 * fKeepConn the framing policy (src/http/framing.ts) requires.
 *
 * Where node:http cannot be the oracle as is, the row says so in `exception`, with the reason; nothing is
 * weakened anywhere else.
 */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  HSE_STATUS_ERROR,
  HSE_STATUS_PENDING,
  HSE_STATUS_SUCCESS,
  HSE_STATUS_SUCCESS_AND_KEEP_CONN,
} from '../../src/ecb/constants.js';
import { renderWire, type RecordedResponse } from '../../src/ecb/recorded-response.js';
import { RequestModel } from '../../src/ecb/request-model.js';
import { CHost, hostThreadId, type CHostResult } from '../native/c-host.js';
import {
  CASE_HEADER,
  comparable,
  isapiDescription,
  oracleRequest,
  pattern,
  readBody,
  sha256,
  type CaseRequest,
  type Comparable,
} from '../support/conformance.js';
import { headerValue, interimLength, NodeHttpOracle, splitResponse, type OracleResponse } from '../support/node-http-oracle.js';
import { AppRunner, FORMS } from '../support/run-app.js';

type Route = (req: IncomingMessage, res: ServerResponse) => unknown;

/** Why a row may not compare against node:http as is. Every departure from the plain comparison is one of these. */
type Exception =
  /** node:http has no defined response (the process dies): compare against the library's documented response. */
  | { readonly kind: 'intended-response'; readonly reason: string; readonly wire: string }
  /**
   * node:http has no defined response (an uncaught error kills the process, which closes the socket): the oracle
   * server stands in for the crash by destroying the connection, so the client sees exactly the bytes that had
   * left before it. The ISAPI side must give the client those same bytes, then close.
   */
  | { readonly kind: 'crash-as-destroy'; readonly reason: string }
  /** node:http's Connection header disagrees with fKeepConn for a stated reason; the wire is still compared in full. */
  | { readonly kind: 'keep-alive-policy'; readonly reason: string }
  /**
   * ISAPI cannot send an interim (1xx) response: SEND_RESPONSE_HEADER_EX sends the one head of the request
   * (ISAPI.md §7.1). The node:http wire is compared from its final response on; the interim ones must not leak.
   */
  | { readonly kind: 'interim-dropped'; readonly reason: string }
  /** The wire is identical, but the ISAPI session closes the connection where node:http would keep it. */
  | { readonly kind: 'closes-after-response'; readonly reason: string };

interface Case {
  readonly name: string;
  readonly request: CaseRequest;
  readonly route: Route;
  /**
   * How the ISAPI session ends when not as the response's framing says (DONE with SUCCESS_AND_KEEP_CONN exactly
   * when fKeepConn, no CLOSE_CONNECTION):
   * - 'torn-down': CLOSE_CONNECTION, then DONE with HSE_STATUS_ERROR (an error or res.destroy());
   * - 'closed-after-response': the response is complete, then CLOSE_CONNECTION and DONE with HSE_STATUS_SUCCESS.
   */
  readonly ending?: 'torn-down' | 'closed-after-response';
  /** Also run end to end from the C reference host's pthreads. */
  readonly cHost?: true;
  readonly exception?: Exception;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const MIB = 1024 * 1024;
const TEN_MIB_BLOCKS = Array.from({ length: 10 }, (_, i) => pattern(MIB, 100 + i));
const UPLOAD_48K_PLUS_1 = pattern(48 * 1024 + 1, 1);
const UPLOAD_5MB = pattern(5 * 1000 * 1000, 2);
const UPLOAD_CHUNKS = [1, 100, 4096, 65536, 7, 30000, 48 * 1024 + 1, 3].map((n, i) => pattern(n, 10 + i));

/** Echo an upload: its length, hash and how it was framed in headers, then the bytes themselves. */
const echoUpload: Route = async (req, res) => {
  const body = await readBody(req);
  res.setHeader('Content-Type', 'application/octet-stream');
  res.setHeader('X-Body-Length', body.length);
  res.setHeader('X-Body-Sha256', sha256(body));
  res.setHeader('X-Request-Framing', `cl=${req.headers['content-length'] ?? 'none'} te=${req.headers['transfer-encoding'] ?? 'none'}`);
  res.end(body);
};

const echoUrl: Route = (req, res) => {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q + 1);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(JSON.stringify({ url, decodedPath: decodeURIComponent(path), query: [...new URLSearchParams(query)] }));
};

const INTENDED_500 = 'HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 22\r\n\r\nInternal Server Error\n';

const CASES: readonly Case[] = [
  // ── basics, HEAD, bodiless statuses ────────────────────────────────────────────────────────────────
  { name: 'GET with a fixed body', cHost: true, request: {}, route: (_q, s) => s.end('hello') },
  {
    name: 'HEAD with an explicit Content-Length and no body',
    request: { method: 'HEAD' },
    route: (_q, s) => {
      s.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 1234 });
      s.end();
    },
  },
  {
    name: 'HEAD to a route that writes a body',
    cHost: true,
    request: { method: 'HEAD', url: '/page' },
    route: (_q, s) => {
      s.setHeader('Content-Type', 'text/html');
      s.write('<p>written');
      s.end(' but never sent</p>');
    },
  },
  {
    name: 'HEAD to a route that ends with a string body',
    request: { method: 'HEAD' },
    route: (_q, s) => s.end('thirteen char'),
  },
  {
    name: '204 No Content (a body written anyway is dropped)',
    request: { method: 'DELETE', url: '/item/1' },
    route: (_q, s) => {
      s.writeHead(204, { 'X-Deleted': '1' });
      s.end('ignored');
    },
  },
  {
    name: '304 Not Modified with ETag',
    cHost: true,
    request: { headers: [['If-None-Match', '"v1"']] },
    route: (_q, s) => {
      s.writeHead(304, { ETag: '"v1"', 'Cache-Control': 'max-age=60' });
      s.end();
    },
  },
  { name: 'empty body: end() with nothing', request: {}, route: (_q, s) => s.end() },
  {
    name: '302 redirect with Location',
    cHost: true,
    request: { url: '/old' },
    route: (_q, s) => {
      s.writeHead(302, { Location: '/new?from=old' });
      s.end();
    },
  },

  // ── framing: chunked, app-set TE, trailers, Content-Length, close-delimited ─────────────────────────
  {
    name: 'chunked response from several writes',
    cHost: true,
    request: {},
    route: (_q, s) => {
      s.setHeader('Content-Type', 'text/plain');
      s.write('a');
      s.write('bb');
      s.end('ccc');
    },
  },
  {
    name: 'app-set Transfer-Encoding: chunked',
    request: {},
    route: (_q, s) => {
      s.setHeader('Transfer-Encoding', 'chunked');
      s.write('x');
      s.end('yz');
    },
  },
  {
    name: 'trailers: Trailer header + addTrailers',
    cHost: true,
    request: {},
    route: (_q, s) => {
      s.writeHead(200, { 'Content-Type': 'text/plain', Trailer: 'X-Checksum' });
      s.write('data with a trailer');
      s.addTrailers({ 'X-Checksum': sha256(Buffer.from('data with a trailer')) });
      s.end();
    },
  },
  {
    name: 'explicit Content-Length matching a body written in two parts',
    request: {},
    route: (_q, s) => {
      s.setHeader('Content-Length', 11);
      s.write('hello ');
      s.end('world');
    },
  },
  {
    name: 'close-delimited HTTP/1.1 body (app removed Transfer-Encoding)',
    request: {},
    route: (_q, s) => {
      s.removeHeader('Transfer-Encoding');
      s.write('until ');
      s.end('close');
    },
    exception: {
      kind: 'keep-alive-policy',
      reason:
        'node:http still writes "Connection: keep-alive" here, then closes anyway (_last); the ISAPI path sends fKeepConn=0 so IIS closes: the body has no other end',
    },
  },
  {
    name: 'res.write() with no end() until a timer fires',
    request: {},
    route: (_q, s) => {
      s.write('first;');
      setTimeout(() => s.end('second'), 30);
    },
  },
  {
    name: "res.write('') before real writes",
    request: {},
    route: (_q, s) => {
      s.write('');
      s.write('x');
      s.write('');
      s.end();
    },
  },
  {
    name: 'cork()/uncork() batches writes',
    request: {},
    route: (_q, s) => {
      s.cork();
      s.write('one,');
      s.write('two,');
      process.nextTick(() => {
        s.uncork();
        s.end('three');
      });
    },
  },
  {
    name: 'flushHeaders() then a later body (event stream)',
    request: { headers: [['Accept', 'text/event-stream']] },
    route: (_q, s) => {
      s.setHeader('Content-Type', 'text/event-stream');
      s.setHeader('Cache-Control', 'no-cache');
      s.flushHeaders();
      setTimeout(() => {
        s.write('data: 1\n\n');
        s.end('data: 2\n\n');
      }, 20);
    },
  },

  // ── headers ────────────────────────────────────────────────────────────────────────────────────────
  {
    name: 'multiple Set-Cookie (array + appendHeader)',
    cHost: true,
    request: {},
    route: (_q, s) => {
      s.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; HttpOnly']);
      s.appendHeader('Set-Cookie', 'c=3; SameSite=Lax');
      s.end('cookies');
    },
  },
  {
    name: 'writeHead with an object (array value, status 201)',
    request: { method: 'POST', body: '{}', headers: [['Content-Type', 'application/json']] },
    route: (_q, s) => {
      s.writeHead(201, { 'Content-Type': 'application/json', 'X-Multi': ['1', '2'], Location: '/things/7' });
      s.end('{"id":7}');
    },
  },
  {
    name: 'writeHead with a flat array',
    request: {},
    route: (_q, s) => {
      s.writeHead(200, ['Content-Type', 'text/plain', 'X-Dup', 'a', 'X-Dup', 'b']);
      s.end('flat');
    },
  },
  {
    name: 'headers set only through writeHead (invisible to getHeader)',
    request: {},
    route: (_q, s) => {
      s.writeHead(200, { 'X-Only': 'writehead', 'Content-Type': 'application/json' });
      s.end(JSON.stringify({ seen: s.getHeader('x-only') ?? null, names: s.getHeaderNames() }));
    },
  },
  {
    name: "writeHead(200, 'Custom Reason')",
    request: {},
    route: (_q, s) => {
      s.writeHead(200, 'Custom Reason');
      s.end('reason');
    },
  },
  {
    name: 'res.statusMessage with a custom reason phrase',
    request: {},
    route: (_q, s) => {
      s.statusCode = 299;
      s.statusMessage = 'Totally Fine';
      s.end('custom');
    },
  },
  {
    name: 'unregistered status code (Node says "unknown")',
    request: {},
    route: (_q, s) => {
      s.statusCode = 599;
      s.end('unknown reason');
    },
  },
  {
    name: 'setHeader with numeric and array values',
    request: {},
    route: (_q, s) => {
      s.setHeader('X-Num', 42);
      s.setHeader('X-Arr', ['a', 'b', 'c']);
      s.setHeader('Content-Length', 7);
      s.end('numeric');
    },
  },
  {
    name: 'odd-case header names (X-MiXeD) keep their case',
    request: {},
    route: (_q, s) => {
      s.setHeader('X-MiXeD', 'Value');
      s.setHeader('content-TYPE', 'text/plain');
      s.setHeader('etag', 'W/"1"');
      s.end('case');
    },
  },
  {
    name: 'a large number of headers, both ways',
    request: { headers: Array.from({ length: 60 }, (_, i): [string, string] => [`X-Req-${i}`, `v${i}`]) },
    route: (q, s) => {
      for (let i = 0; i < 120; i++) s.setHeader(`X-Header-${String(i).padStart(3, '0')}`, `value-${i}-${'x'.repeat(i % 17)}`);
      s.end(`request header lines: ${q.rawHeaders.length / 2}; x-req-59=${q.headers['x-req-59']}`);
    },
  },
  {
    // Node writes the head glued to a first string body, in that string's encoding: here the header leaves as UTF-8.
    name: 'non-ASCII response header before a UTF-8 string body (head goes out as UTF-8)',
    request: {},
    route: (_q, s) => {
      s.setHeader('Content-Type', 'text/plain; charset=utf-8');
      s.setHeader('X-Latin1', 'caf\u00e9');
      s.end('h\u00e9llo w\u00f6rld \u2713 \u{1F600}');
    },
  },

  {
    name: 'non-ASCII header and reason phrase before a Buffer body (head goes out latin1)',
    request: {},
    route: (_q, s) => {
      s.statusMessage = 'Tr\u00e8s bien';
      s.setHeader('X-Latin1', 'caf\u00e9');
      s.end(Buffer.from('buffer body'));
    },
  },

  // ── bodies ─────────────────────────────────────────────────────────────────────────────────────────
  {
    name: 'binary body with all 256 byte values',
    cHost: true,
    request: {},
    route: (_q, s) => {
      s.setHeader('Content-Type', 'application/octet-stream');
      s.write(ALL_BYTES);
      s.end(Buffer.from(ALL_BYTES).reverse());
    },
  },
  {
    name: '10 MiB response in 1 MiB writes, waiting for drain',
    cHost: true,
    request: { url: '/big' },
    route: async (_q, s) => {
      s.setHeader('Content-Type', 'application/octet-stream');
      for (const block of TEN_MIB_BLOCKS) if (!s.write(block)) await once(s, 'drain');
      s.end();
    },
  },
  {
    name: 'res.write(Uint8Array) and a Buffer view with an offset',
    request: {},
    route: (_q, s) => {
      const backing = Buffer.from('0123456789abcdefghij');
      s.write(new Uint8Array([104, 105, 32]));
      s.write(backing.subarray(5, 12));
      s.end(new Uint8Array(backing.buffer, backing.byteOffset + 15, 5));
    },
  },
  {
    name: 'string writes in hex, base64 and utf16le',
    request: {},
    route: (_q, s) => {
      s.write('68656c6c6f', 'hex');
      s.write('IHdvcmxk', 'base64');
      s.end('!\u00e9', 'utf16le');
    },
  },
  {
    name: 'res.end(Buffer)',
    request: {},
    route: (_q, s) => s.end(Buffer.from('h\u00e9llo buffer', 'utf8')),
  },
  {
    name: "res.end(string, 'latin1')",
    request: {},
    route: (_q, s) => s.end('h\u00e9llo \u00ff latin1', 'latin1'),
  },

  // ── request targets ────────────────────────────────────────────────────────────────────────────────
  {
    // node:http answers 400 to raw non-ASCII bytes in the request target (llhttp), so a client percent-encodes.
    name: 'Unicode in the URL (percent-encoded UTF-8), echoed back',
    cHost: true,
    request: { url: '/caf%C3%A9/%E2%82%AC?q=%F0%9F%98%80&name=J%C3%BCrgen' },
    route: echoUrl,
  },
  { name: '%2F in the path stays encoded in req.url', request: { url: '/files/a%2Fb%2Fc?x=%2F' }, route: echoUrl },
  { name: 'query string with repeats, empty values and +', request: { url: '/search?q=a+b&x=1&x=2&empty=&flag' }, route: echoUrl },

  // ── uploads ────────────────────────────────────────────────────────────────────────────────────────
  { name: 'upload of 0 bytes', request: { method: 'POST', url: '/upload', body: Buffer.alloc(0) }, route: echoUpload },
  {
    name: 'upload of 48 KiB + 1 (one byte past the read-ahead)',
    cHost: true,
    request: { method: 'POST', url: '/upload', body: UPLOAD_48K_PLUS_1, headers: [['Content-Type', 'application/octet-stream']] },
    route: echoUpload,
  },
  {
    name: 'upload of 5 MB',
    cHost: true,
    request: { method: 'PUT', url: '/upload', body: UPLOAD_5MB, headers: [['Content-Type', 'application/octet-stream']] },
    route: echoUpload,
  },
  {
    name: 'upload of unknown length (chunked request)',
    cHost: true,
    request: { method: 'POST', url: '/upload', chunks: UPLOAD_CHUNKS },
    route: echoUpload,
  },
  {
    name: 'streaming echo: req.pipe(res) with the upload\'s Content-Length',
    cHost: true,
    request: { method: 'POST', url: '/pipe', body: pattern(1_500_000, 4) },
    route: (q, s) => {
      s.setHeader('Content-Length', String(q.headers['content-length']));
      q.pipe(s);
    },
  },
  {
    name: 'upload of unknown length with no bytes at all',
    request: { method: 'POST', url: '/upload', chunks: [] },
    route: echoUpload,
  },
  {
    name: 'POST without Expect: urlencoded form',
    request: { method: 'POST', url: '/form', body: 'a=1&b=two+words&c=%26', headers: [['Content-Type', 'application/x-www-form-urlencoded']] },
    route: async (q, s) => {
      const form = new URLSearchParams((await readBody(q)).toString('latin1'));
      s.setHeader('Content-Type', 'application/json');
      s.end(JSON.stringify({ expect: q.headers.expect ?? null, form: [...form] }));
    },
  },
  {
    name: 'POST whose body the app never reads',
    request: { method: 'POST', url: '/ignore', body: pattern(70_000, 3) },
    route: (_q, s) => s.end('not read'),
  },

  {
    name: 'a 5 MB POST the app never reads',
    request: { method: 'POST', url: '/ignore', body: UPLOAD_5MB },
    route: (_q, s) => s.end('not read either'),
    ending: 'closed-after-response',
    exception: {
      kind: 'closes-after-response',
      reason:
        'node:http reads and discards the whole unread body to keep the connection (req._dump); the ISAPI exchange drains at most maxDrainBytes (1 MiB) and closes instead (exchange.ts onFinish)',
    },
  },

  // ── request line and request headers as the app sees them ─────────────────────────────────────────
  {
    name: 'request headers: duplicates, empty and padded values, method and version',
    request: {
      method: 'PATCH',
      url: '/headers',
      body: '{}',
      headers: [
        ['Cookie', 'a=1'],
        ['X-Forwarded-For', '10.0.0.1'],
        ['Cookie', 'b=2'],
        ['X-Forwarded-For', '10.0.0.2'],
        ['Content-Type', 'application/json'],
        ['X-Empty', ''],
        ['X-Padded', 'padded   value'],
        ['Accept', 'text/html'],
        ['Accept', 'application/json'],
        ['Set-Cookie', 'odd=1'],
        ['Set-Cookie', 'odd=2'],
      ],
    },
    route: (q, s) => {
      s.setHeader('Content-Type', 'application/json');
      s.end(JSON.stringify({ method: q.method, httpVersion: q.httpVersion, headers: q.headers, rawHeaders: q.rawHeaders, distinct: q.headersDistinct }));
    },
  },
  { name: 'OPTIONS * (asterisk-form target)', request: { method: 'OPTIONS', url: '*' }, route: echoUrl },
  {
    name: 'a 6 KB request target (longer than a first GetServerVariable probe)',
    request: { url: `/long?${'k=' + 'v'.repeat(6000)}` },
    route: (q, s) => s.end(`${q.url?.length}:${sha256(Buffer.from(q.url ?? ''))}`),
  },

  // ── protocol versions and connection management ────────────────────────────────────────────────────
  {
    name: 'HTTP/1.0 GET with a streamed body (close-delimited)',
    cHost: true,
    request: { httpVersion: '1.0' },
    route: (_q, s) => {
      s.write('one ');
      s.end('zero');
    },
  },
  {
    name: 'HTTP/1.0 with an app-set Transfer-Encoding: chunked (Node frames it anyway)',
    request: { httpVersion: '1.0' },
    route: (_q, s) => {
      s.setHeader('Transfer-Encoding', 'chunked');
      s.write('framed ');
      s.end('for 1.0');
    },
    exception: {
      kind: 'intended-response',
      reason:
        'node:http sends Transfer-Encoding and chunk frames to an HTTP/1.0 client, which RFC 9112 §6.1 forbids; the ISAPI framing policy drops the header and de-chunks (framing.ts), and the closed connection ends the body',
      wire: 'HTTP/1.1 200 OK\r\n\r\nframed for 1.0',
    },
  },
  { name: 'HTTP/1.0 GET with Content-Length', request: { httpVersion: '1.0' }, route: (_q, s) => s.end('fixed') },
  {
    name: 'HTTP/1.0 with Connection: keep-alive',
    request: { httpVersion: '1.0', headers: [['Connection', 'keep-alive']] },
    route: (_q, s) => s.end('fixed'),
    exception: {
      kind: 'keep-alive-policy',
      reason: 'node:http keeps an HTTP/1.0 keep-alive connection; the ISAPI framing policy closes every HTTP/1.0 connection (DESIGN.md)',
    },
  },
  {
    name: 'Connection: close requested by the client (chunked body)',
    cHost: true,
    request: { headers: [['Connection', 'close']] },
    route: (_q, s) => {
      s.write('bye ');
      s.end('now');
    },
  },
  {
    name: 'the app sets Connection: close itself',
    request: {},
    route: (_q, s) => {
      s.setHeader('Connection', 'close');
      s.write('closing ');
      s.end('soon');
    },
  },
  { name: 'Connection: close requested by the client (Content-Length)', request: { headers: [['Connection', 'close']] }, route: (_q, s) => s.end('bye') },

  // ── interim responses ──────────────────────────────────────────────────────────────────────────────
  {
    name: 'writeEarlyHints (103) before the response',
    request: {},
    route: (_q, s) => {
      s.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      s.setHeader('Content-Type', 'text/html');
      s.end('<p>final</p>');
    },
    exception: { kind: 'interim-dropped', reason: 'ISAPI has no way to send a 1xx interim response; 103 is advisory (RFC 8297), so it is dropped' },
  },
  {
    name: 'writeContinue() called by the app',
    request: { method: 'POST', url: '/upload', body: 'small body' },
    route: (q, s) => {
      s.writeContinue();
      return echoUpload(q, s);
    },
    exception: {
      kind: 'interim-dropped',
      reason: 'ISAPI has no way to send a 1xx interim response; IIS itself answers Expect: 100-continue before the extension runs',
    },
  },

  // ── errors and aborts ──────────────────────────────────────────────────────────────────────────────
  {
    name: 'a throw before the headers',
    request: {},
    route: (_q, s) => {
      s.setHeader('X-Leak', 'secret');
      throw new Error('boom before the head');
    },
    exception: {
      kind: 'intended-response',
      reason:
        'node:http has no answer: a synchronous throw in the listener is an uncaught exception. The documented behaviour (exchange.ts, pitfalls P14) is a 500 with a generic body and none of the app headers',
      wire: INTENDED_500,
    },
  },
  {
    name: 'a synchronous throw after writeHead + write',
    ending: 'torn-down',
    request: {},
    route: (_q, s) => {
      s.writeHead(200, { 'Content-Type': 'text/plain' });
      s.write('partial');
      throw new Error('boom after the head');
    },
    exception: {
      kind: 'crash-as-destroy',
      reason:
        'node:http crashes; the write is still corked (Node uncorks on the next tick), so no byte leaves on either side: the client sees the connection close with nothing',
    },
  },
  {
    name: 'an async throw after the head and part of the body',
    cHost: true,
    ending: 'torn-down',
    request: {},
    route: async (_q, s) => {
      s.writeHead(200, { 'Content-Type': 'text/plain' });
      s.write('partial body');
      await sleep(20);
      throw new Error('boom mid-body');
    },
    exception: {
      kind: 'crash-as-destroy',
      reason: 'node:http crashes on the unhandled rejection; the client has the head and the first chunk, then the connection closes',
    },
  },
  {
    name: 'res.destroy() before the head',
    ending: 'torn-down',
    request: {},
    route: (_q, s) => {
      s.setHeader('Content-Type', 'text/plain');
      setTimeout(() => s.destroy(), 10);
    },
  },
  {
    name: 'res.destroy() mid-body',
    ending: 'torn-down',
    request: {},
    route: (_q, s) => {
      s.setHeader('Content-Type', 'text/plain');
      s.write('some of it');
      setTimeout(() => s.destroy(), 20);
    },
  },
];

// ── the app both sides run ───────────────────────────────────────────────────────────────────────────

const byName = new Map(CASES.map((c) => [c.name, c]));
if (byName.size !== CASES.length) throw new Error('case names must be unique');

const app: Route = (req, res) => {
  const row = byName.get(String(req.headers[CASE_HEADER.toLowerCase()]));
  if (!row) {
    res.statusCode = 404;
    return void res.end();
  }
  return row.route(req, res);
};

/**
 * node:http's own listener wrapper for the rows whose app throws: node:http would let the error kill the process,
 * and a dead process closes its sockets. Destroying the socket is that crash, limited to the connection.
 */
const crashed = new Set<string>();
const oracleApp: Route = (req, res) => {
  const crash = (): void => {
    crashed.add(String(req.headers[CASE_HEADER.toLowerCase()]));
    req.socket.destroy();
  };
  try {
    const result = app(req, res);
    if (result instanceof Promise) result.catch(crash);
  } catch {
    crash();
  }
};

// ── checks ───────────────────────────────────────────────────────────────────────────────────────────

const view = (c: Comparable): Omit<Comparable, 'bytes'> => ({ head: c.head, bodyLength: c.bodyLength, bodySha256: c.bodySha256, bodyPreview: c.bodyPreview });

function expectSameWire(isapi: Buffer, expected: Buffer): void {
  const a = comparable(isapi);
  const b = comparable(expected);
  expect(view(a)).toEqual(view(b));
  expect(a.bytes.equals(b.bytes)).toBe(true);
}

function clientKeepsAlive(row: Case): boolean {
  const connection = row.request.headers?.find(([k]) => k.toLowerCase() === 'connection')?.[1] ?? '';
  return (row.request.httpVersion ?? '1.1') === '1.1' && !/\bclose\b/i.test(connection);
}

/** What the node:http oracle answered for a row: the expected wire and node's own keep-alive decision. */
interface Expected {
  readonly wire: Buffer;
  /** node:http's Connection header said keep-alive; null when there is no oracle head to ask. */
  readonly nodeKeepsAlive: boolean | null;
  /** The app asked for the connection to close (its own `Connection: close`, which node:http sends as is). */
  readonly responseSaysClose: boolean;
}

async function expectedFor(oracle: NodeHttpOracle, row: Case): Promise<Expected> {
  if (row.exception?.kind === 'intended-response') {
    return { wire: Buffer.from(row.exception.wire, 'latin1'), nodeKeepsAlive: null, responseSaysClose: false };
  }
  const { bytes, method } = oracleRequest(row.name, row.request);
  const response: OracleResponse = await oracle.request(bytes, method);
  // The crash stand-in above must have served exactly the rows that name it.
  expect(crashed.has(row.name)).toBe(row.exception?.kind === 'crash-as-destroy');
  const interim = interimLength(response.raw);
  // Only a row that names the exception may differ by its interim responses.
  if (row.exception?.kind === 'interim-dropped') expect(interim).toBeGreaterThan(0);
  else expect(interim).toBe(0);
  const wire = response.raw.subarray(interim);
  const split = splitResponse(wire);
  const connection = split.hasHead ? (headerValue(split.headerLines, 'connection') ?? '') : null;
  return {
    wire,
    nodeKeepsAlive: connection === null ? null : /keep-alive/i.test(connection),
    // Node writes `Connection: close` itself too, when the client asked for it or spoke HTTP/1.0: only for a client
    // that keeps the connection does a close in the response come from the app.
    responseSaysClose: clientKeepsAlive(row) && /\bclose\b/i.test(connection ?? ''),
  };
}

/** The framing facts and the session rules, checked on every ISAPI run. */
function expectIsapiFacts(row: Case, record: RecordedResponse, expected: Expected): void {
  expect(record.procResult).toBe(HSE_STATUS_PENDING);
  expect(record.doneCount).toBe(1);
  if (record.status !== null && record.headerBlock !== null) {
    const head = splitResponse(renderWire(record, { server: null, date: null }));
    const status = Number.parseInt(record.status, 10);
    const method = row.request.method ?? 'GET';
    const chunked = /(?:^|,)\s*chunked\s*$/i.test(headerValue(head.headerLines, 'transfer-encoding') ?? '');
    const selfDelimiting =
      method === 'HEAD' || status === 204 || status === 304 || headerValue(head.headerLines, 'content-length') !== undefined || chunked;
    // fKeepConn: only a self-delimiting body to a client that keeps the connection (HTTP/1.1 without close), and
    // not when the response itself says close (the app set `Connection: close`: Node then renders no other value).
    expect(record.keepConn).toBe(selfDelimiting && clientKeepsAlive(row) && !expected.responseSaysClose);
    // And it agrees with node:http's own decision, unless the row names why not.
    if (expected.nodeKeepsAlive !== null && row.exception?.kind !== 'keep-alive-policy') expect(record.keepConn).toBe(expected.nodeKeepsAlive);
    // Chunk framing passes through on HTTP/1.1: the header stays and the body keeps its frames (compared above).
    if ((row.request.httpVersion ?? '1.1') === '1.1') {
      const oracleHead = splitResponse(expected.wire);
      const oracleChunked = /(?:^|,)\s*chunked\s*$/i.test(headerValue(oracleHead.headerLines, 'transfer-encoding') ?? '');
      expect(chunked).toBe(oracleChunked);
    }
  }
  if (row.ending === 'torn-down') {
    expect(record.closedConnection).toBe(true);
    expect(record.doneStatus).toBe(HSE_STATUS_ERROR);
  } else if (row.ending === 'closed-after-response') {
    expect(record.closedConnection).toBe(true);
    expect(record.doneStatus).toBe(HSE_STATUS_SUCCESS);
  } else {
    expect(record.closedConnection).toBe(false);
    expect(record.doneStatus).toBe(record.keepConn ? HSE_STATUS_SUCCESS_AND_KEEP_CONN : HSE_STATUS_SUCCESS);
  }
}

// ── the table ────────────────────────────────────────────────────────────────────────────────────────

let oracle: NodeHttpOracle;
const runner = new AppRunner(app);

beforeAll(async () => {
  oracle = await NodeHttpOracle.start(oracleApp);
});
afterAll(async () => {
  await oracle.close();
  runner.close();
});

test('the table holds at least 40 cases, at least 10 run end to end from the C host, and every exception is named', () => {
  expect(CASES.length).toBeGreaterThanOrEqual(40);
  const cHostRows = CASES.filter((c) => c.cHost);
  expect(cHostRows.length).toBeGreaterThanOrEqual(10);
  expect(cHostRows.map((c) => c.name)).toEqual(expect.arrayContaining(['upload of 5 MB', '10 MiB response in 1 MiB writes, waiting for drain']));
  for (const row of CASES) {
    if (row.exception) expect(row.exception.reason.length).toBeGreaterThan(20);
    // A session that closes where node:http keeps the connection is a named exception, never a silent one.
    if (row.ending === 'closed-after-response') expect(row.exception?.kind).toBe('closes-after-response');
    if (row.exception?.kind === 'crash-as-destroy') expect(row.ending).toBe('torn-down');
  }
});

describe.each(FORMS)('ISAPI on %s equals node:http', (form) => {
  test.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, row) => {
    const expected = await expectedFor(oracle, row);
    const record = await runner.run(form, isapiDescription(row.name, row.request));
    expect(record.violations).toEqual([]);
    expectSameWire(renderWire(record, { server: null, date: null }), expected.wire);
    expectIsapiFacts(row, record, expected);
  });
});

describe('end to end from 8 pthreads of the C reference host, byte-identical to node:http', () => {
  const rows = CASES.filter((c) => c.cHost);
  const results = new Map<string, { result: CHostResult; expected: Expected }>();
  let host: CHost;
  let jsThread: number;

  beforeAll(async () => {
    host = new CHost();
    jsThread = hostThreadId();
    const proc = runner.extension.nativeEntryPoints().HttpExtensionProc;
    // HSE_REQ_IS_KEEP_CONN is a per-run answer in the C host: the rows whose client keeps the connection run
    // together, then the others, each batch from 8 host threads at once.
    for (const keepConn of [true, false]) {
      const group = rows.filter((row) => clientKeepsAlive(row) === keepConn);
      if (group.length === 0) continue;
      const expected = await Promise.all(group.map((row) => expectedFor(oracle, row)));
      const models = group.map((row) => new RequestModel(isapiDescription(row.name, row.request)));
      const batch = await host.executeMany(models, proc, { threads: 8, keepConn });
      batch.forEach((result, i) => results.set(group[i]!.name, { result, expected: expected[i]! }));
    }
  });
  afterAll(async () => {
    await host.close();
  });

  test.each(rows.map((c) => [c.name, c] as const))('%s', (_name, row) => {
    const { result, expected } = results.get(row.name)!;
    expect(result.timedOut).toBe(false);
    expect(result.procError).toBeNull();
    // HttpExtensionProc was called from a host pthread, not from this JS thread.
    expect(result.procThread).not.toBe(jsThread);
    expect(result.violations).toEqual({ useAfterDone: 0, asyncOverlap: 0, headersTwice: 0, doneTwice: 0 });
    expectSameWire(renderWire(result, { server: null, date: null }), expected.wire);
    expectIsapiFacts(row, result, expected);
  });
});
