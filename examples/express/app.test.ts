/** The example app, through the full ISAPI path (toRequestListener → SimpleHandler → createExtension → ECB). */
import { inject } from 'isapi-http/testing';
import app from './app.js';

test('GET / answers the HTML page, saying it went through IIS', async () => {
  const res = await inject(app, '/');
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/html/);
  expect(res.text()).toContain('Served via Microsoft-IIS/10.0, as anonymous.');
});

test('GET /api/hello?name= greets by name, also on native ECB memory', async () => {
  const res = await inject(app, '/api/hello?name=Ann', { native: true });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ message: 'Hello, Ann!' });
});

test('the Windows user IIS authenticated is what the app sees', async () => {
  const res = await inject(app, { url: '/', serverVariables: { AUTH_USER: 'CORP\\ann', AUTH_TYPE: 'Negotiate' } });
  expect(res.text()).toContain('as CORP\\ann.');
});

test('POST /api/echo echoes JSON', async () => {
  const res = await inject(app, { method: 'POST', url: '/api/echo', body: { a: 1, b: [true, null] } });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({ echo: { a: 1, b: [true, null] } });
});

test('POST /api/echo refuses what is not JSON', async () => {
  const res = await inject(app, { method: 'POST', url: '/api/echo', headers: { 'content-type': 'text/plain' }, body: 'hi' });
  expect(res.statusCode).toBe(415);
});

test('static files are served', async () => {
  const res = await inject(app, '/static/hello.txt');
  expect(res.statusCode).toBe(200);
  expect(res.text()).toContain('Hello from a static file');
});
