/** The Fastify example through the full ISAPI path, without IIS: inject() on a mock ECB (and once natively). */
import { HSE_STATUS_PENDING } from 'isapi-http';
import { EmulatedHost, inject, MockEcb } from 'isapi-http/testing';
import app, { createApp } from './app.js';
import extension from './isapi.js';

const ann = { AUTH_USER: 'CORP\\ann', AUTH_TYPE: 'Negotiate' };

afterAll(async () => {
  extension.dispose();
  await app.close();
});

test('GET /api/hello greets by name', async () => {
  const res = await inject(app, '/api/hello?name=Ann');
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(res.json()).toEqual({ message: 'Hello, Ann!' });
});

test('GET /api/hello on native ECB memory (EmulatedHost)', async () => {
  const res = await inject(app, '/api/hello', { native: true });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ message: 'Hello, world!' });
});

test('the Windows user IIS authenticated reaches the onRequest hook through request.raw.isapi.user', async () => {
  const res = await inject(app, { url: '/api/me', serverVariables: ann });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ name: 'CORP\\ann', authType: 'Negotiate' });

  const anonymous = await inject(app, { url: '/api/me', headers: { 'Remote-User': 'CORP\\admin' } });
  expect(anonymous.statusCode).toBe(401);
  expect(anonymous.json()).toEqual({ error: 'anonymous: enable Windows authentication in IIS' });
});

describe('orders', () => {
  const orders = createApp(); // a fresh store: ids start at 1
  afterAll(() => orders.close());

  test('POST creates from a JSON body (201, Location); the response schema drops what it does not list', async () => {
    const res = await inject(orders, { method: 'POST', url: '/api/orders', body: { item: 'tea', quantity: 2 }, serverVariables: ann });
    expect(res.statusCode).toBe(201);
    expect(res.headers.location).toBe('/api/orders/1');
    expect(res.json()).toEqual({ id: 1, item: 'tea', quantity: 2, owner: 'CORP\\ann' }); // no `internal`
  });

  test('GET reads it back, the :id coerced to an integer by the params schema', async () => {
    const res = await inject(orders, '/api/orders/1');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ id: 1, item: 'tea', quantity: 2, owner: 'CORP\\ann' });
  });

  test('a property the body schema does not list is removed, not refused (Fastify\'s Ajv: removeAdditional)', async () => {
    const res = await inject(orders, { method: 'POST', url: '/api/orders', body: { item: 'milk', quantity: 1, price: 0 } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({ id: 2, item: 'milk', quantity: 1, owner: 'anonymous' });
  });

  test('an unknown order is 404', async () => {
    const res = await inject(orders, '/api/orders/7');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: 'no order 7' });
  });
});

test.each([
  [{ item: 'tea' }, "body must have required property 'quantity'"],
  [{ item: 'tea', quantity: 0 }, 'body/quantity must be >= 1'],
  [{ item: '', quantity: 1 }, 'body/item must NOT have fewer than 1 characters'],
])('schema validation refuses %j with 400 before the handler runs', async (body, message) => {
  const res = await inject(app, { method: 'POST', url: '/api/orders', body });
  expect(res.statusCode).toBe(400);
  expect(res.json()).toEqual({ statusCode: 400, code: 'FST_ERR_VALIDATION', error: 'Bad Request', message });
});

test('the params schema refuses a non-integer :id with 400', async () => {
  const res = await inject(app, '/api/orders/abc');
  expect(res.statusCode).toBe(400);
  expect(res.json()).toEqual({ statusCode: 400, code: 'FST_ERR_VALIDATION', error: 'Bad Request', message: 'params/id must be integer' });
});

test('malformed JSON is Fastify\'s own 400', async () => {
  const res = await inject(app, { method: 'POST', url: '/api/orders', headers: { 'content-type': 'application/json' }, body: '{"item":' });
  expect(res.statusCode).toBe(400);
  expect(res.json()).toMatchObject({ statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY', error: 'Bad Request' });
});

test('an unknown route is Fastify\'s own 404', async () => {
  const res = await inject(app, '/nope');
  expect(res.statusCode).toBe(404);
  expect(res.json()).toEqual({ message: 'Route GET:/nope not found', error: 'Not Found', statusCode: 404 });
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
