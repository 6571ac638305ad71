/** The Express TypeScript example through the full ISAPI path, without IIS: inject() on a mock ECB (and once natively). */
import { HSE_STATUS_PENDING } from 'isapi-http';
import { EmulatedHost, inject, MockEcb } from 'isapi-http/testing';
import app, { createApp, type Todo } from './app.js';
import extension from './isapi.js';

const ann = { AUTH_USER: 'CORP\\ann', AUTH_TYPE: 'Negotiate' };

afterAll(() => extension.dispose());

test('GET /api/hello greets by name', async () => {
  const res = await inject(app, '/api/hello?name=Ann');
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(res.json()).toEqual({ message: 'Hello, Ann!' });
});

test('GET /api/hello without a name, on native ECB memory (EmulatedHost)', async () => {
  const res = await inject(app, '/api/hello', { native: true });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ message: 'Hello, world!' });
});

test('the Windows user IIS authenticated reaches the app as req.isapi.user', async () => {
  const res = await inject(app, { url: '/api/me', serverVariables: ann });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ name: 'CORP\\ann', authType: 'Negotiate' });
});

test('an anonymous request gets 401, and a forged header does not make it a user', async () => {
  const res = await inject(app, { url: '/api/me', headers: { 'X-Forwarded-User': 'CORP\\admin', 'Remote-User': 'CORP\\admin' } });
  expect(res.statusCode).toBe(401);
  expect(res.json()).toEqual({ error: 'anonymous: enable Windows authentication in IIS' });
});

test('POST /api/todos creates from a JSON body (201, Location), owned by the IIS user; GET reads it back', async () => {
  const app = createApp(); // a fresh store: ids start at 1
  const created = await inject(app, { method: 'POST', url: '/api/todos', body: { title: '  write docs ' }, serverVariables: ann });
  expect(created.statusCode).toBe(201);
  expect(created.headers.location).toBe('/api/todos/1');
  const todo: Todo = { id: 1, title: 'write docs', done: false, owner: 'CORP\\ann' };
  expect(created.json()).toEqual(todo);

  const read = await inject(app, '/api/todos/1');
  expect(read.statusCode).toBe(200);
  expect(read.json()).toEqual(todo);
});

test('POST /api/todos refuses an invalid body with 400 from the error middleware', async () => {
  const missing = await inject(app, { method: 'POST', url: '/api/todos', body: { done: true } });
  expect(missing.statusCode).toBe(400);
  expect(missing.json()).toEqual({ error: 'title must be a non-empty string' });

  const wrongType = await inject(app, { method: 'POST', url: '/api/todos', body: { title: 'x', done: 'yes' } });
  expect(wrongType.statusCode).toBe(400);
  expect(wrongType.json()).toEqual({ error: 'done must be a boolean' });
});

test('malformed JSON is body-parser\'s 400, answered as JSON by the same middleware', async () => {
  const res = await inject(app, { method: 'POST', url: '/api/todos', headers: { 'content-type': 'application/json' }, body: '{"title":' });
  expect(res.statusCode).toBe(400);
  expect(res.json<{ error: string }>().error).toMatch(/JSON/);
});

test('an unknown todo is a 404 from the error middleware', async () => {
  const res = await inject(app, '/api/todos/999');
  expect(res.statusCode).toBe(404);
  expect(res.json()).toEqual({ error: 'no todo 999' });
});

test('an unknown route is the JSON 404', async () => {
  const res = await inject(app, '/nope?x=1');
  expect(res.statusCode).toBe(404);
  expect(res.json()).toEqual({ error: 'not found', path: '/nope' });
});

test('a thrown error is a 500 that does not leak its message, and is logged', async () => {
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
