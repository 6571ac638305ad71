/** The strict incremental chunked parser: payload, where the message ends, and what it refuses. */
import { ChunkedBodyParser } from '../../src/host/chunked-body.js';
import { analyseResponse, ResponseBodyTracker } from '../../src/host/response-framing.js';

function decode(parts: string[]): { payload: string; used: number[]; done: boolean } {
  const parser = new ChunkedBodyParser();
  const out: Buffer[] = [];
  const used = parts.map((p) => parser.push(Buffer.from(p, 'latin1'), (b) => out.push(Buffer.from(b))));
  return { payload: Buffer.concat(out).toString('latin1'), used, done: parser.done };
}

test('decodes byte by byte or at once, with extensions and trailers, and stops at the end of the message', () => {
  const wire = '5;ext=1\r\nhello\r\nA \r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nGET /next HTTP/1.1\r\n';
  const whole = decode([wire]);
  expect(whole).toMatchObject({ payload: 'hello0123456789', done: true });
  expect(whole.used[0]).toBe(wire.indexOf('GET'));
  const bytewise = decode(wire.slice(0, wire.indexOf('GET')).split(''));
  expect(bytewise).toMatchObject({ payload: 'hello0123456789', done: true });
});

test.each([
  ['x\r\n', 'a size line must start with hex digits'],
  ['5\nhello', 'bare LF after the size'],
  ['5\r\nhelloX\r\n', 'no CRLF after the data'],
  ['1234567890123\r\n', 'a size beyond 2^48'],
  ['5 x\r\n', 'junk after the size'],
  ['0\r\n bad\r\n\r\n', 'a folded trailer'],
])('%j is refused (%s)', (wire) => {
  expect(() => decode([wire])).toThrow(expect.objectContaining({ statusCode: 400, code: 'HPE_INVALID_CHUNK_SIZE' }));
});

test('the response tracker keeps a connection only when the body ended exactly where its framing says', () => {
  const length = new ResponseBodyTracker(analyseResponse('GET', '200 OK', 'Content-Length: 5\r\n\r\n'));
  length.push(Buffer.from('hel'));
  expect(length.complete).toBe(false);
  length.push(Buffer.from('lo'));
  expect(length.complete).toBe(true);
  length.push(Buffer.from('!'));
  expect(length.complete).toBe(false);

  const chunked = new ResponseBodyTracker(analyseResponse('GET', '200 OK', 'Transfer-Encoding: chunked\r\n\r\n'));
  chunked.push(Buffer.from('3\r\nabc\r\n'));
  expect(chunked.complete).toBe(false);
  chunked.push(Buffer.from('0\r\n\r\n'));
  expect(chunked.complete).toBe(true);

  expect(analyseResponse('HEAD', '200 OK', 'Content-Length: 5\r\n\r\n').body).toBe('none');
  expect(analyseResponse('GET', '304 Not Modified', '\r\n').body).toBe('none');
  expect(analyseResponse('GET', '200 OK', 'Content-Type: text/plain\r\n\r\n').body).toBe('close');
  expect(analyseResponse('GET', '200 OK', 'Connection: close\r\nContent-Length: 1\r\n\r\n')).toMatchObject({ body: 'length', hasConnection: true });
});
