/**
 * A Hono 4 app (a Fetch app: `app.fetch(request) => Response`): request headers through c.req.header(), JSON bodies,
 * HTTPException for 4xx answers, a streamed response written piece by piece (hono/streaming), and Hono's own 404.
 * isapi-http serves Fetch apps through @hono/node-server (an optional peer dependency), which also hands the app the
 * Node request as c.env.incoming: that is where req.isapi, what IIS knows about the request, is found.
 * `isapi-http serve examples/hono/app.js` serves it through the ISAPI path.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { streamText } from 'hono/streaming';

const greetings = { en: 'Hello', fr: 'Bonjour', de: 'Hallo' };

export function createApp() {
  const app = new Hono();

  app.onError((error, c) => {
    if (error instanceof HTTPException) return c.json({ error: error.message }, error.status);
    console.error(`${c.req.method} ${c.req.path} failed:`, error);
    return c.json({ error: 'internal error' }, 500);
  });

  // c.req.header(name): the request's headers, as the client sent them through IIS.
  app.get('/api/hello', (c) => {
    const language = (c.req.header('accept-language') ?? 'en').slice(0, 2).toLowerCase();
    const greeting = greetings[language] ?? greetings.en;
    c.header('Content-Language', greetings[language] ? language : 'en');
    return c.json({ message: `${greeting}, ${c.req.query('name') || 'world'}!` });
  });

  // The Windows user IIS authenticated: c.env.incoming is the IncomingMessage isapi-http built.
  app.get('/api/me', (c) => {
    const user = c.env?.incoming?.isapi?.user;
    if (!user) throw new HTTPException(401, { message: 'anonymous: enable Windows authentication in IIS' });
    return c.json({ name: user.name, authType: user.authType });
  });

  app.post('/api/echo', async (c) => {
    if (!(c.req.header('content-type') ?? '').startsWith('application/json')) throw new HTTPException(415, { message: 'send application/json' });
    const body = await c.req.json().catch(() => {
      throw new HTTPException(400, { message: 'malformed JSON' });
    });
    return c.json({ echo: body, requestId: c.req.header('x-request-id') ?? null });
  });

  // A streamed body: each write leaves as it is made (chunked), not once the handler has finished.
  app.get('/api/countdown', (c) => {
    const from = Math.min(Number(c.req.query('from') ?? 3) || 3, 10);
    return streamText(c, async (stream) => {
      for (let i = from; i > 0; i--) {
        await stream.writeln(String(i));
        await sleep(20);
      }
      await stream.writeln('liftoff');
    });
  });

  app.get('/api/boom', () => {
    throw new Error('something broke');
  });

  return app;
}

const app = createApp();
export default app;
