/** The emulated front end's strict request-head parser and body-framing rules. */
import { bodyFraming, HttpParseError, parseHead, RequestHeadReader } from '../../src/host/http-request-parser.js';

const head = (text: string) => parseHead(text, text.length + 4);

function parseError(fn: () => unknown): HttpParseError {
  try {
    fn();
  } catch (error) {
    if (error instanceof HttpParseError) return error;
    throw error;
  }
  throw new Error('expected an HttpParseError');
}

describe('RequestHeadReader', () => {
  test('finds a head split across many reads, and says how many bytes it used', () => {
    const reader = new RequestHeadReader();
    const wire = Buffer.from('GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Y:  v  \r\n\r\nBODY');
    let buffer = Buffer.alloc(0);
    let taken = null;
    for (const byte of wire) {
      buffer = Buffer.concat([buffer, Buffer.from([byte])]);
      taken = reader.take(buffer);
      if (taken) break;
    }
    expect(taken!.used).toBe(wire.length - 4);
    expect(taken!.head).toMatchObject({ method: 'GET', target: '/a?b=1', url: '/a?b=1', httpVersion: '1.1', headers: [['Host', 'x'], ['X-Y', 'v']] });
  });

  test('skips empty lines before the request line (RFC 9112 §2.2)', () => {
    const taken = new RequestHeadReader().take(Buffer.from('\r\n\r\nGET / HTTP/1.0\r\n\r\n'));
    expect(taken!.head.httpVersion).toBe('1.0');
    expect(taken!.used).toBe(22);
  });

  test('a head over maxHeaderSize is 431, with or without its end', () => {
    const reader = new RequestHeadReader(100);
    expect(parseError(() => reader.take(Buffer.from(`GET / HTTP/1.1\r\nX: ${'a'.repeat(200)}`))).statusCode).toBe(431);
    expect(parseError(() => new RequestHeadReader(100).take(Buffer.from(`GET / HTTP/1.1\r\nX: ${'a'.repeat(200)}\r\n\r\n`))).statusCode).toBe(431);
  });

  test('a bare LF is refused at once', () => {
    expect(parseError(() => new RequestHeadReader().take(Buffer.from('GET / HTTP/1.1\nHost: x\n'))).code).toBe('HPE_LF_EXPECTED');
  });
});

describe('parseHead', () => {
  test('absolute-form becomes origin-form; * only with OPTIONS; CONNECT keeps its authority', () => {
    expect(head('GET http://example.com:8080/p/q?x=1 HTTP/1.1\r\nHost: e').url).toBe('/p/q?x=1');
    expect(head('GET https://example.com HTTP/1.1\r\nHost: e').url).toBe('/');
    expect(head('GET http://example.com?x HTTP/1.1\r\nHost: e').url).toBe('/?x');
    expect(head('OPTIONS * HTTP/1.1\r\nHost: e').url).toBe('*');
    expect(parseError(() => head('GET * HTTP/1.1\r\nHost: e')).statusCode).toBe(400);
    expect(head('CONNECT example.com:443 HTTP/1.1\r\nHost: e').url).toBe('example.com:443');
  });

  test('HTTP/1.2 is handled as 1.1; HTTP/2 and HTTP/0.x are 505', () => {
    expect(head('GET / HTTP/1.2\r\nHost: x').httpVersion).toBe('1.1');
    expect(parseError(() => head('GET / HTTP/2.0')).statusCode).toBe(505);
    expect(parseError(() => head('GET / HTTP/0.9')).statusCode).toBe(505);
  });

  test.each([
    ['GET /a#frag HTTP/1.1', 'HPE_INVALID_URL'],
    ['GET relative HTTP/1.1', 'HPE_INVALID_URL'],
    ['G(T / HTTP/1.1', 'HPE_INVALID_METHOD'],
    ['GET / HTTP/1.1\r\n: empty name', 'HPE_INVALID_HEADER_TOKEN'],
    ['GET / HTTP/1.1\r\nX\tY: 1', 'HPE_INVALID_HEADER_TOKEN'],
    ['GET / HTTP/1.1\r\nX: a\x7fb', 'HPE_INVALID_HEADER_TOKEN'],
    ['GET / HTTP/1.1\r\n\tfolded', 'HPE_INVALID_HEADER_TOKEN'],
    ['GET / HTTP/1.1 extra', 'HPE_INVALID_REQUEST_LINE'],
  ])('%j → 400 %s', (text, code) => {
    const error = parseError(() => head(text));
    expect(error.statusCode).toBe(400);
    expect(error.code).toBe(code);
  });

  test('obs-text (bytes ≥ 0x80) and HTAB are allowed in values', () => {
    expect(head('GET / HTTP/1.1\r\nX: caf\xe9\tok').headers).toEqual([['X', 'caf\xe9\tok']]);
  });
});

describe('bodyFraming', () => {
  test('none, length, chunked', () => {
    expect(bodyFraming(head('GET / HTTP/1.1\r\nHost: x'))).toEqual({ kind: 'none' });
    expect(bodyFraming(head('POST / HTTP/1.1\r\nContent-Length: 0'))).toEqual({ kind: 'none' });
    expect(bodyFraming(head('POST / HTTP/1.1\r\nContent-Length: 12'))).toEqual({ kind: 'length', length: 12 });
    expect(bodyFraming(head('POST / HTTP/1.1\r\nContent-Length: 12\r\nContent-Length: 12'))).toEqual({ kind: 'length', length: 12 });
    expect(bodyFraming(head('POST / HTTP/1.1\r\nTransfer-Encoding: Chunked'))).toEqual({ kind: 'chunked' });
  });

  test.each([
    ['POST / HTTP/1.1\r\nContent-Length: 1, 2', 400],
    ['POST / HTTP/1.1\r\nContent-Length: -1', 400],
    ['POST / HTTP/1.1\r\nContent-Length: 1e3', 400],
    ['POST / HTTP/1.1\r\nContent-Length: 1234567890123456', 400],
    ['POST / HTTP/1.0\r\nTransfer-Encoding: chunked', 400],
    ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3', 400],
    ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip', 400],
    ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked', 400],
    ['POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked', 501],
  ])('%j → %i', (text, status) => {
    expect(parseError(() => bodyFraming(head(text))).statusCode).toBe(status);
  });
});
