/** The Koa example through the full ISAPI path, without IIS: inject() on a mock ECB (and once natively). */
import { HSE_STATUS_PENDING } from 'isapi-http';
import { EmulatedHost, inject, MockEcb } from 'isapi-http/testing';
import app, { createApp } from './app.js';
import extension from './isapi.js';

const ann = { AUTH_USER: 'CORP\\ann', AUTH_TYPE: 'Negotiate' };

afterAll(() => extension.dispose());

test('GET /api/hello greets by name, timed by the outer middleware', async () => {
  const res = await inject(app, '/api/hello?name=Ann');
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(res.headers['x-response-time']).toMatch(/^\d+(\.\d+)?ms$/);
  expect(res.json()).toEqual({ message: 'Hello, Ann!' });
});

test('GET /api/hello on native ECB memory (EmulatedHost)', async () => {
  const res = await inject(app, '/api/hello', { native: true });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ message: 'Hello, world!' });
});

test('the Windows user IIS authenticated reaches the app as ctx.req.isapi.user', async () => {
  const res = await inject(app, { url: '/api/me', serverVariables: ann });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ name: 'CORP\\ann', authType: 'Negotiate' });
});

test('ctx.throw(401) for an anonymous request becomes a 401 JSON answer', async () => {
  const res = await inject(app, { url: '/api/me', headers: { 'Remote-User': 'CORP\\admin' } });
  expect(res.statusCode).toBe(401);
  expect(res.json()).toEqual({ error: 'anonymous: enable Windows authentication in IIS' });
  expect(res.headers['x-response-time']).toBeDefined(); // the error came back out through the onion
});

test('POST /api/notes creates from a JSON body (201, Location), authored by the IIS user; GET reads it back', async () => {
  const app = createApp(); // a fresh store: ids start at 1
  const created = await inject(app, { method: 'POST', url: '/api/notes', body: { text: 'hello' }, serverVariables: ann });
  expect(created.statusCode).toBe(201);
  expect(created.headers.location).toBe('/api/notes/1');
  expect(created.json()).toEqual({ id: 1, text: 'hello', author: 'CORP\\ann' });

  const read = await inject(app, '/api/notes/1');
  expect(read.statusCode).toBe(200);
  expect(read.json()).toEqual({ id: 1, text: 'hello', author: 'CORP\\ann' });
});

test('ctx.throw(400) for a body without text becomes a 400 JSON answer', async () => {
  const res = await inject(app, { method: 'POST', url: '/api/notes', body: { txt: 'typo' } });
  expect(res.statusCode).toBe(400);
  expect(res.json()).toEqual({ error: 'text is required' });
});

test('ctx.assert(note, 404) for an unknown note', async () => {
  const res = await inject(app, '/api/notes/42');
  expect(res.statusCode).toBe(404);
  expect(res.json()).toEqual({ error: 'no note 42' });
});

test('an unknown route is Koa\'s own 404', async () => {
  const res = await inject(app, '/nope');
  expect(res.statusCode).toBe(404);
  expect(res.text()).toBe('Not Found');
});

test('a wrong method on a known path is 405 with Allow (router.allowedMethods)', async () => {
  const res = await inject(app, { method: 'DELETE', url: '/api/hello' });
  expect(res.statusCode).toBe(405);
  expect(res.headers.allow).toBe('HEAD, GET');
});

test('a thrown error is a 500 that hides its message, and is logged through app.emit(\'error\')', async () => {
  const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    const res = await inject(app, '/api/boom');
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: 'internal error' });
    expect(logged.mock.calls.flat().join(' ')).toContain('something broke');
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
