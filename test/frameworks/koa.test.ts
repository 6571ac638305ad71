/**
 * Koa 2 and 3, on the matrix, with the Koa ecosystem: @koa/router, @koa/bodyparser, koa-static (mounted with
 * koa-mount), koa-conditional-get + @koa/etag for 304s. Koa has no multipart parser of its own: busboy reads ctx.req.
 * koa-static (koa-send) does not implement Range requests, so the Range scenario expects the whole file (Caps).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';
import Koa2 from 'koa2';
import conditional from 'koa-conditional-get';
import etag from '@koa/etag';
import mount from 'koa-mount';
import serve from 'koa-static';
import { BIG, readMultipart, sseStream, type Kit } from './kit.js';
import { frameworkMatrix } from './scenarios.js';

function build(K: typeof Koa, kit: Kit): Koa {
  const app = new K();
  app.silent = true; // the abort scenario destroys a streamed body; Koa would log it
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      ctx.status = 500;
      ctx.body = { error: (error as Error).message };
    }
  });
  app.use(conditional());
  app.use(etag());
  app.use(mount('/static', serve(kit.publicDir)));
  app.use(bodyParser());

  const router = new Router();
  router.get('/users/:id', (ctx) => void (ctx.body = { id: ctx.params.id, q: ctx.query.q }));
  router.post('/json', (ctx) => void (ctx.body = { got: ctx.request.body }));
  router.post('/form', (ctx) => void (ctx.body = { got: ctx.request.body }));
  router.post('/upload', async (ctx) => void (ctx.body = await readMultipart(ctx.req)));
  router.get('/cookies', (ctx) => {
    ctx.cookies.set('a', '1');
    ctx.cookies.set('b', '2', { httpOnly: true });
    ctx.body = 'cookies';
  });
  router.get('/redirect', (ctx) => ctx.redirect('/target'));
  router.get('/sse', (ctx) => {
    ctx.type = 'text/event-stream';
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = sseStream();
  });
  router.get('/boom', () => {
    throw new Error('boom');
  });
  router.get('/async', async (ctx) => {
    await sleep(5);
    ctx.body = { async: true };
  });
  router.get('/big', (ctx) => {
    ctx.type = 'application/octet-stream';
    ctx.body = BIG;
  });
  router.get('/abort', (ctx) => {
    kit.probe.watch(ctx.res);
    ctx.type = 'application/octet-stream';
    ctx.body = kit.probe.source();
  });
  router.get('/whoami', (ctx) => void (ctx.body = { ip: ctx.ip, protocol: ctx.protocol }));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

const caps = { range: false } as const;
frameworkMatrix({ name: 'Koa 2', build: (kit) => build(Koa2, kit), caps });
frameworkMatrix({ name: 'Koa 3', build: (kit) => build(Koa, kit), caps });
