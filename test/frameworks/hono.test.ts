/**
 * Hono 4 as a Fetch app, on the matrix: toRequestListener sees `.fetch` and drives it through @hono/node-server's
 * getRequestListener. Static files come from @hono/node-server/serve-static, which does Range and Last-Modified but
 * no conditional requests: hono/etag in front of it answers If-None-Match; If-Modified-Since is not answered (Caps).
 * Hono parses JSON, forms and multipart itself (Fetch Request.formData()).
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HttpBindings } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono } from 'hono';
import { setCookie } from 'hono/cookie';
import { etag } from 'hono/etag';
import { streamSSE } from 'hono/streaming';
import { BIG, fileSummary, ticks, type Kit } from './kit.js';
import { frameworkMatrix } from './scenarios.js';

function build(kit: Kit): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.onError((error, c) => c.json({ error: error.message }, 500));
  app.use('/static/*', etag(), serveStatic({ root: kit.publicDir, rewriteRequestPath: (p) => p.replace(/^\/static/, '') }));
  app.get('/users/:id', (c) => c.json({ id: c.req.param('id'), q: c.req.query('q') }));
  app.post('/json', async (c) => c.json({ got: await c.req.json<unknown>() }));
  app.post('/form', async (c) => c.json({ got: await c.req.parseBody() }));
  app.post('/upload', async (c) => {
    const body = await c.req.parseBody();
    const file = body.file as File;
    return c.json({ fields: { note: body.note }, files: [fileSummary('file', file.name, Buffer.from(await file.arrayBuffer()))] });
  });
  app.get('/cookies', (c) => {
    setCookie(c, 'a', '1', { path: '/' });
    setCookie(c, 'b', '2', { path: '/', httpOnly: true });
    return c.text('cookies');
  });
  app.get('/redirect', (c) => c.redirect('/target'));
  app.get('/sse', (c) =>
    streamSSE(c, async (stream) => {
      for await (const t of ticks()) await stream.writeSSE({ data: t });
    }),
  );
  app.get('/boom', () => {
    throw new Error('boom');
  });
  app.get('/async', async (c) => {
    await sleep(5);
    return c.json({ async: true });
  });
  app.get('/big', (c) => c.body(BIG as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': 'application/octet-stream' }));
  app.get('/abort', (c) => {
    kit.probe.watch(c.env.outgoing);
    return c.body(Readable.toWeb(kit.probe.source()) as ReadableStream, 200, { 'Content-Type': 'application/octet-stream' });
  });
  app.get('/whoami', (c) => c.json({ ip: getConnInfo(c).remote.address, protocol: new URL(c.req.url).protocol.slice(0, -1) }));
  return app;
}

frameworkMatrix({
  name: 'Hono 4 (Fetch)',
  build,
  caps: { conditional: ['etag'] },
  extra: (harness) => {
    // @hono/node-server sets `Transfer-Encoding: chunked` on streamed bodies and Node chunk-frames them even for an
    // HTTP/1.0 request (as node:http itself does). RFC 9112 §6.1: a server MUST NOT send Transfer-Encoding to an
    // HTTP/1.0 client, so the framing policy (src/http/framing.ts) drops the header and de-chunks.
    test('an HTTP/1.0 client gets the event stream without chunk framing (RFC 9112 §6.1)', async () => {
      const res = await harness().call({ url: '/sse', httpVersion: '1.0' });
      expect(res.keepConn).toBe(false);
      expect(res.headers['transfer-encoding']).toBeUndefined();
      expect(res.record.body.toString('latin1')).toMatch(/^data: tick 1\n\n/);
    });
  },
});
