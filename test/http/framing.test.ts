/** The one framing policy, branch by branch (src/http/framing.ts; ISAPI.md §7.2). */
import { framingFor, hasNoBody, isChunked } from '../../src/http/framing.js';
import { parseHead, renderIsapiHeaders } from '../../src/http/response-head.js';

const head = (lines: string[], status = '200 OK'): ReturnType<typeof parseHead> => parseHead(`HTTP/1.1 ${status}\r\n${lines.map((l) => l + '\r\n').join('')}\r\n`);
const v11 = { httpVersionMajor: 1, httpVersionMinor: 1, method: 'GET' };

describe('framingFor', () => {
  test('HTTP/1.1 with Content-Length keeps the connection', () => {
    expect(framingFor({ ...v11, head: head(['Content-Length: 2']) })).toMatchObject({ keepConn: true, dechunk: false, closeReason: null });
  });
  test("HTTP/1.1 with Node's chunked framing keeps the connection and passes the framing through", () => {
    const f = framingFor({ ...v11, head: head(['Transfer-Encoding: chunked']) });
    expect(f).toMatchObject({ keepConn: true, dechunk: false });
    expect(f.drop.has('transfer-encoding')).toBe(false);
  });
  test('HTTP/1.1 with a body that is not self-delimiting closes the connection', () => {
    expect(framingFor({ ...v11, head: head(['Content-Type: text/plain']) })).toMatchObject({ keepConn: false, closeReason: 'body is not self-delimiting' });
  });
  test.each([
    ['HEAD', '200 OK'],
    ['GET', '204 No Content'],
    ['GET', '304 Not Modified'],
  ])('HTTP/1.1 %s %s has no body, so it is self-delimiting', (method, status) => {
    expect(framingFor({ ...v11, method, head: head([], status) }).keepConn).toBe(true);
  });
  test('HTTP/1.1 with Connection: close from Node (client or app asked) closes', () => {
    expect(framingFor({ ...v11, head: head(['Connection: close', 'Content-Length: 1']) })).toMatchObject({ keepConn: false, closeReason: 'Connection: close' });
  });
  test('HTTP/1.0 always closes, whatever the framing', () => {
    expect(framingFor({ httpVersionMajor: 1, httpVersionMinor: 0, method: 'GET', head: head(['Content-Length: 1']) })).toMatchObject({ keepConn: false, closeReason: 'HTTP/1.0' });
  });
  test('HTTP/1.0 never gets Transfer-Encoding: a body the app marked chunked is de-chunked (RFC 9112 §6.1)', () => {
    const f = framingFor({ httpVersionMajor: 1, httpVersionMinor: 0, method: 'GET', head: head(['Transfer-Encoding: chunked']) });
    expect(f).toMatchObject({ keepConn: false, dechunk: true });
    expect(renderIsapiHeaders(head(['Transfer-Encoding: chunked', 'X-A: 1']), f.drop)).toBe('X-A: 1\r\n\r\n');
  });
  test('HTTP/2 gets no Transfer-Encoding and de-chunks a body the app forced into chunks', () => {
    const f = framingFor({ httpVersionMajor: 2, httpVersionMinor: 0, method: 'GET', head: head(['Transfer-Encoding: chunked']) });
    expect(f).toMatchObject({ keepConn: true, dechunk: true });
    expect(renderIsapiHeaders(head(['Transfer-Encoding: chunked', 'X-A: 1']), f.drop)).toBe('X-A: 1\r\n\r\n');
  });
  test('HTTP/2 without chunking passes the body as is', () => {
    expect(framingFor({ httpVersionMajor: 2, httpVersionMinor: 0, method: 'GET', head: head(['Content-Type: a/b']) }).dechunk).toBe(false);
  });
});

describe('response head', () => {
  test('drops Date, Connection and Keep-Alive, keeps every other line byte for byte and in order', () => {
    const h = parseHead('HTTP/1.1 201 Made It\r\nDate: x\r\nSet-Cookie: a=1\r\nX-MiXeD: v\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nSet-Cookie: b=2\r\n\r\n');
    expect(h.status).toBe('201 Made It');
    expect(h.statusCode).toBe(201);
    expect(renderIsapiHeaders(h, new Set())).toBe('Set-Cookie: a=1\r\nX-MiXeD: v\r\nSet-Cookie: b=2\r\n\r\n');
  });
  test('an empty header set still ends with the blank line IIS needs (ISAPI.md §13 item 8)', () => {
    expect(renderIsapiHeaders(parseHead('HTTP/1.1 200 OK\r\nDate: x\r\n\r\n'), new Set())).toBe('\r\n');
  });
  test('helpers', () => {
    expect(isChunked(head(['Transfer-Encoding: gzip, chunked']))).toBe(true);
    expect(isChunked(head(['Transfer-Encoding: chunked, gzip']))).toBe(false);
    expect(hasNoBody('GET', 101)).toBe(true);
    expect(hasNoBody('POST', 200)).toBe(false);
  });
});
