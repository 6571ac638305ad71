/**
 * A Koa 3 app with @koa/router and @koa/bodyparser: an error middleware that turns ctx.throw() into a JSON answer
 * with the thrown status, a timing middleware around everything (Koa's onion), JSON bodies, and the Windows user
 * IIS authenticated (ctx.req.isapi.user). Nothing here depends on ISAPI at run time: under plain node:http,
 * ctx.req.isapi is undefined. `isapi-http serve examples/koa/app.js` serves it through the ISAPI path.
 */
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';

export function createApp() {
  const notes = new Map();
  let nextId = 1;
  const app = new Koa();

  // The onion: this runs before and after everything below, errors included (the next one answers them).
  app.use(async (ctx, next) => {
    const started = process.hrtime.bigint();
    await next();
    ctx.set('X-Response-Time', `${Number(process.hrtime.bigint() - started) / 1e6}ms`);
  });

  // Errors: ctx.throw(400, '...') arrives here with err.status and err.expose (true for 4xx).
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      ctx.status = err.status ?? 500;
      ctx.body = { error: err.expose ? err.message : 'internal error' };
      if (ctx.status >= 500) ctx.app.emit('error', err, ctx); // Koa's own handler logs it (unless app.silent)
    }
  });

  app.use(bodyParser());

  const router = new Router({ prefix: '/api' });

  router.get('/hello', (ctx) => {
    ctx.body = { message: `Hello, ${ctx.query.name || 'world'}!` };
  });

  // ctx.req is the IncomingMessage isapi-http built; `isapi` holds what IIS knows, never a client header.
  router.get('/me', (ctx) => {
    const user = ctx.req.isapi?.user;
    if (!user) ctx.throw(401, 'anonymous: enable Windows authentication in IIS');
    ctx.body = { name: user.name, authType: user.authType };
  });

  router.post('/notes', (ctx) => {
    const { text } = ctx.request.body ?? {};
    if (typeof text !== 'string' || text === '') ctx.throw(400, 'text is required');
    const note = { id: nextId++, text, author: ctx.req.isapi?.user?.name ?? 'anonymous' };
    notes.set(note.id, note);
    ctx.status = 201;
    ctx.set('Location', `/api/notes/${note.id}`);
    ctx.body = note;
  });

  router.get('/notes/:id', (ctx) => {
    const note = notes.get(Number(ctx.params.id));
    ctx.assert(note, 404, `no note ${ctx.params.id}`);
    ctx.body = note;
  });

  router.get('/boom', () => {
    throw new Error('something broke');
  });

  app.use(router.routes());
  app.use(router.allowedMethods()); // 405 with Allow for a known path and a wrong method
  return app;
}

const app = createApp();
export default app;
