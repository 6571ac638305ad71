/** The NestJS example through the full ISAPI path, without IIS: inject() on a mock ECB (and once natively). */
import type { INestApplication } from '@nestjs/common';
import { HSE_STATUS_PENDING } from 'isapi-http';
import { EmulatedHost, inject, MockEcb } from 'isapi-http/testing';
import { createApp } from './app.js';
import extension from './isapi.js';

const ann = { AUTH_USER: 'CORP\\ann', AUTH_TYPE: 'Negotiate' };
let app: INestApplication;

beforeAll(async () => {
  app = await createApp(false);
});
afterAll(async () => {
  extension.dispose();
  await app.close();
});

test('GET /api/hello greets by name (@Query)', async () => {
  const res = await inject(app, '/api/hello?name=Ann');
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(res.headers['x-powered-by']).toBeUndefined();
  expect(res.json()).toEqual({ message: 'Hello, Ann!' });
});

test('GET /api/hello on native ECB memory (EmulatedHost)', async () => {
  const res = await inject(app, '/api/hello', { native: true });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ message: 'Hello, world!' });
});

test('the Windows user IIS authenticated passes the guard and reaches the handler (@WindowsUser)', async () => {
  const res = await inject(app, { url: '/api/me', serverVariables: ann });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ name: 'CORP\\ann', authType: 'Negotiate' });
});

test('the guard answers an anonymous request with 401, whatever headers it sends', async () => {
  const res = await inject(app, { url: '/api/me', headers: { 'Remote-User': 'CORP\\admin', 'X-Forwarded-User': 'CORP\\admin' } });
  expect(res.statusCode).toBe(401);
  expect(res.json()).toEqual({ message: 'anonymous: enable Windows authentication in IIS', error: 'Unauthorized', statusCode: 401 });
});

test('POST /api/notes: the pipe turns the JSON body into the DTO; the injected service stores it (201); GET reads it back', async () => {
  const created = await inject(app, { method: 'POST', url: '/api/notes', body: { text: ' buy milk ', tags: ['home'] }, serverVariables: ann });
  expect(created.statusCode).toBe(201);
  const note = { id: 1, text: 'buy milk', tags: ['home'], author: 'CORP\\ann' };
  expect(created.json()).toEqual(note);

  const read = await inject(app, '/api/notes/1');
  expect(read.statusCode).toBe(200);
  expect(read.json()).toEqual(note);
});

test('the DTO pipe refuses an invalid body with 400, listing every problem', async () => {
  const res = await inject(app, { method: 'POST', url: '/api/notes', body: { text: '', tags: 'home' }, serverVariables: ann });
  expect(res.statusCode).toBe(400);
  expect(res.json()).toEqual({ message: ['text must be a non-empty string', 'tags must be an array of strings'], error: 'Bad Request', statusCode: 400 });
});

test('the guard runs before the pipe: an anonymous POST is 401 even with a valid body', async () => {
  const res = await inject(app, { method: 'POST', url: '/api/notes', body: { text: 'x' } });
  expect(res.statusCode).toBe(401);
});

test('ParseIntPipe refuses a non-numeric :id with 400; an unknown note is NotFoundException\'s 404', async () => {
  const bad = await inject(app, '/api/notes/abc');
  expect(bad.statusCode).toBe(400);
  expect(bad.json()).toEqual({ message: 'Validation failed (numeric string is expected)', error: 'Bad Request', statusCode: 400 });

  const missing = await inject(app, '/api/notes/99');
  expect(missing.statusCode).toBe(404);
  expect(missing.json()).toEqual({ message: 'no note 99', error: 'Not Found', statusCode: 404 });
});

test('an unknown route is Nest\'s own 404', async () => {
  const res = await inject(app, '/nope');
  expect(res.statusCode).toBe(404);
  expect(res.json()).toEqual({ message: 'Cannot GET /nope', error: 'Not Found', statusCode: 404 });
});

describe('isapi.ts, the extension module', () => {
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

  test('it serves its own Nest app (built while the module loaded) on a MockEcb, keeping the ISAPI rules', async () => {
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
