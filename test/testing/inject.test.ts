/** inject(): the full ISAPI path from a unit test, on MockEcb and on EmulatedHost. */
import { Readable } from 'node:stream';
import { HSE_STATUS_SUCCESS_AND_KEEP_CONN } from '../../src/ecb/constants.js';
import { ErrorCodes } from '../../src/errors.js';
import { inject } from '../../src/testing/inject.js';

const echo = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => {
    const body = Buffer.concat(parts);
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Set-Cookie', ['a=1', 'b=2']);
    res.end(JSON.stringify({ method: req.method, url: req.url, type: req.headers['content-type'] ?? null, length: body.length, text: body.toString(), user: (req as unknown as { isapi: { user: unknown } }).isapi.user }));
  });
};

describe.each([false, true])('inject (native: %s)', (native) => {
  test('returns status, headers, raw headers, body, text() and json()', async () => {
    const res = await inject(echo, { method: 'POST', url: '/x?y=1', body: 'hello' }, { native });
    expect(res.statusCode).toBe(200);
    expect(res.statusMessage).toBe('OK');
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(res.rawHeaders.slice(0, 4)).toEqual(['Content-Type', 'application/json', 'Set-Cookie', 'a=1']);
    expect(res.json()).toMatchObject({ method: 'POST', url: '/x?y=1', length: 5, text: 'hello' });
    expect(res.keepConn).toBe(true);
    expect(res.record.doneStatus).toBe(HSE_STATUS_SUCCESS_AND_KEEP_CONN);
    expect(res.logData).toMatch(/^isapi-http /);
  });

  test('an object body is sent as JSON with its content type', async () => {
    const res = await inject(echo, { method: 'POST', body: { a: [1, 2] } }, { native });
    expect(res.json()).toMatchObject({ type: 'application/json', text: '{"a":[1,2]}' });
  });

  test('a Readable or async iterable body without a length is sent chunked, of unknown length', async () => {
    const res = await inject(echo, { method: 'PUT', body: Readable.from([Buffer.from('ab'), Buffer.from('cd')]) }, { native });
    expect(res.json()).toMatchObject({ length: 4, text: 'abcd' });
    async function* gen(): AsyncGenerator<string> {
      yield 'x';
      yield 'yz';
    }
    expect((await inject(echo, { method: 'PUT', body: gen() }, { native })).json()).toMatchObject({ text: 'xyz' });
  });

  test('server variables reach the app (Windows authentication)', async () => {
    const res = await inject(echo, { url: '/', serverVariables: { AUTH_USER: 'CORP\\ann', AUTH_TYPE: 'Negotiate' } }, { native });
    expect(res.json()).toMatchObject({ user: { name: 'CORP\\ann', authType: 'Negotiate' } });
  });

  test('a chunked response comes back de-chunked, with its trailers', async () => {
    const res = await inject(
      (_req, r) => {
        r.setHeader('Trailer', 'X-Sum');
        r.write('part1-');
        r.addTrailers({ 'X-Sum': '42' });
        r.end('part2');
      },
      '/t',
      { native },
    );
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.text()).toBe('part1-part2');
    expect(res.trailers).toEqual({ 'x-sum': '42' });
  });

  test('an app that sends no head is a clear error, not a hang', async () => {
    await expect(inject((_req, res) => void res.destroy(), '/', { native })).rejects.toMatchObject({ code: ErrorCodes.INVALID_REQUEST });
  });
});

test('a string request is a URL', async () => {
  expect((await inject((req, res) => res.end(req.url), '/just/a/url')).text()).toBe('/just/a/url');
});

test('two option sets that differ only by a function of the same length are two handlers', async () => {
  const app = (): never => {
    throw new Error('x');
  };
  const a: unknown[] = [];
  const b: unknown[] = [];
  await inject(app, '/', { onError: (e) => void a.push(e) });
  await inject(app, '/', { onError: (e) => void b.push(e) });
  expect([a.length, b.length]).toEqual([1, 1]);
});
