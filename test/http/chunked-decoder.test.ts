import { ChunkedDecoder } from '../../src/http/chunked-decoder.js';

function frame(parts: Buffer[], trailer = ''): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) out.push(Buffer.from(p.length.toString(16) + '\r\n'), p, Buffer.from('\r\n'));
  out.push(Buffer.from(`0\r\n${trailer}\r\n`));
  return Buffer.concat(out);
}

describe('ChunkedDecoder', () => {
  const payload = Buffer.from(Array.from({ length: 600 }, (_, i) => i & 0xff));
  const framed = frame([payload.subarray(0, 256), payload.subarray(256, 257), payload.subarray(257)], 'X-Trailer: 1\r\n');

  test.each([1, 2, 3, 7, 64, framed.length])('decodes binary payloads fed %i bytes at a time, trailers included', (step) => {
    const d = new ChunkedDecoder();
    const out: Buffer[] = [];
    for (let i = 0; i < framed.length; i += step) out.push(d.push(framed.subarray(i, i + step)));
    expect(Buffer.concat(out).equals(payload)).toBe(true);
    expect(d.done).toBe(true);
  });

  test('chunk extensions are ignored', () => {
    const d = new ChunkedDecoder();
    expect(d.push(Buffer.from('3;name=v\r\nabc\r\n0\r\n\r\n')).toString()).toBe('abc');
    expect(d.done).toBe(true);
  });

  test.each([
    ['zz\r\n', /malformed chunk size/],
    ['3\r\nabcX', /missing CR/],
    ['3\nabc', /malformed chunk size line/],
  ])('malformed framing %j throws', (input, message) => {
    expect(() => new ChunkedDecoder().push(Buffer.from(input))).toThrow(message);
  });
});
