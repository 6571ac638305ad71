/** The Hono example through the full ISAPI path, without IIS: inject() on a mock ECB (and once natively). */
import { HSE_STATUS_PENDING } from 'isapi-http';
import { EmulatedHost, inject, MockEcb } from 'isapi-http/testing';
import app from './app.js';
import extension from './isapi.js';

const ann = { AUTH_USER: 'CORP\\ann', AUTH_TYPE: 'Negotiate' };

afterAll(() => extension.dispose());

test('GET /api/hello greets by name', async () => {
  const res = await inject(app, '/api/hello?name=Ann');
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('application/json');
  expect(res.headers['content-language']).toBe('en');
  expect(res.json()).toEqual({ message: 'Hello, Ann!' });
});

test('c.req.header() reads the request headers: Accept-Language picks the greeting', async () => {
  const res = await inject(app, { url: '/api/hello?name=Ann', headers: { 'Accept-Language': 'fr-CH, fr;q=0.9' } });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-language']).toBe('fr');
  expect(res.json()).toEqual({ message: 'Bonjour, Ann!' });
});

test('GET /api/hello on native ECB memory (EmulatedHost)', async () => {
  const res = await inject(app, { url: '/api/hello', headers: { 'Accept-Language': 'de' } }, { native: true });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ message: 'Hallo, world!' });
});

test('the Windows user IIS authenticated reaches the app as c.env.incoming.isapi.user', async () => {
  const res = await inject(app, { url: '/api/me', serverVariables: ann });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ name: 'CORP\\ann', authType: 'Negotiate' });
});

test('an anonymous request is an HTTPException(401), whatever headers it sends', async () => {
  const res = await inject(app, { url: '/api/me', headers: { 'Remote-User': 'CORP\\admin' } });
  expect(res.statusCode).toBe(401);
  expect(res.json()).toEqual({ error: 'anonymous: enable Windows authentication in IIS' });
});

test('POST /api/echo echoes a JSON body and the X-Request-Id header', async () => {
  const res = await inject(app, { method: 'POST', url: '/api/echo', headers: { 'X-Request-Id': 'r-17' }, body: { a: 1, b: [true, null] } });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ echo: { a: 1, b: [true, null] }, requestId: 'r-17' });
});

test('POST /api/echo refuses what is not JSON (415) and malformed JSON (400)', async () => {
  const text = await inject(app, { method: 'POST', url: '/api/echo', headers: { 'content-type': 'text/plain' }, body: 'hi' });
  expect(text.statusCode).toBe(415);
  expect(text.json()).toEqual({ error: 'send application/json' });

  const broken = await inject(app, { method: 'POST', url: '/api/echo', headers: { 'content-type': 'application/json' }, body: '{"a":' });
  expect(broken.statusCode).toBe(400);
  expect(broken.json()).toEqual({ error: 'malformed JSON' });
});

test('GET /api/countdown streams: chunked, one chunk per write', async () => {
  const res = await inject(app, '/api/countdown?from=3');
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('text/plain; charset=UTF-8');
  expect(res.headers['transfer-encoding']).toBe('chunked');
  expect(res.text()).toBe('3\n2\n1\nliftoff\n');
  // What IIS was given: each write as its own chunk, then the terminating chunk.
  expect(res.record.body.toString('latin1')).toBe('2\r\n3\n\r\n2\r\n2\n\r\n2\r\n1\n\r\n8\r\nliftoff\n\r\n0\r\n\r\n');
});

test('an unknown route is Hono\'s own 404', async () => {
  const res = await inject(app, '/nope');
  expect(res.statusCode).toBe(404);
  expect(res.text()).toBe('404 Not Found');
});

test('a thrown error is a 500 from app.onError that hides its message, and is logged', async () => {
  const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    const res = await inject(app, '/api/boom');
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: 'internal error' });
    expect(logged).toHaveBeenCalledWith('GET /api/boom failed:', expect.objectContaining({ message: 'something broke' }));
  } finally {
    logged.mockRestore();
  }
});

describe('isapi.js, the extension module', () => {
  test('its default export is an ISAPI extension', () => {
    expect(extension).toEqual(
      expect.objectContaining({
        GetExtensionVersion: expect.any(Function),
        HttpExtensionProc: expect.any(Function),
        TerminateExtension: expect.any(Function),
        nativeEntryPoints: expect.any(Function),
        dispatch: expect.any(Function),
      }),
    );
  });

  test('it serves the app on a MockEcb, keeping the ISAPI rules', async () => {
    const ecb = await MockEcb.from({ url: '/api/hello?name=IIS' });
    expect(extension.dispatch(ecb)).toBe(HSE_STATUS_PENDING);
    const record = await ecb.whenDone();
    expect(record.status).toBe('200 OK');
    expect(JSON.parse(record.body.toString())).toEqual({ message: 'Hello, IIS!' });
    expect(record.doneCount).toBe(1);
    expect(ecb.violations).toEqual([]);
  });

  test('its native HttpExtensionProc serves a native ECB', async () => {
    const host = new EmulatedHost();
    try {
      const result = await host.execute({ url: '/api/me', serverVariables: ann }, extension.nativeEntryPoints().HttpExtensionProc);
      expect(result.status).toBe('200 OK');
      expect(JSON.parse(result.body.toString())).toEqual({ name: 'CORP\\ann', authType: 'Negotiate' });
      expect(result.violations).toEqual([]);
    } finally {
      host.close();
    }
  });
});
