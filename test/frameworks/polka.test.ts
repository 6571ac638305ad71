/**
 * Polka 0.5, on the matrix, with sirv (Polka's own static server, by the same author) and body-parser. Polka has no
 * multipart parser (busboy reads the raw request), no res.json, and no req.ip / protocol: the raw socket answers
 * those. Polka does not catch a throwing handler: errors reach its onError only through next(error). A throw escapes
 * Polka into isapi-http, which answers 500 itself (a quirk test below) where node:http would crash the process.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import bodyParser from 'body-parser';
import polka from 'polka';
import sirv from 'sirv';
import { BIG, readMultipart, sendJson, socketFacts, writeSse, type Kit } from './kit.js';
import { frameworkMatrix } from './scenarios.js';

type Req = IncomingMessage & { params: Record<string, string>; query: Record<string, string | string[]>; body?: unknown };
type Next = (error?: Error) => void;
type Handler = (req: Req, res: ServerResponse, next: Next) => unknown;
/** @types/polka types handlers with Express's req/res; Polka 0.5 really passes node:http's, plus params/query. */
const h = (handler: Handler): polka.Middleware => handler as unknown as polka.Middleware;

function build(kit: Kit): polka.Polka {
  const app = polka({
    // Polka also routes its 404 through onError, as { code: 404 } (onNoMatch).
    onError: (error: Error & { code?: unknown }, _req: IncomingMessage, res: ServerResponse) =>
      typeof error.code === 'number' ? sendJson(res, error.code, { error: 'not found' }) : sendJson(res, 500, { error: error.message }),
  });
  app.use(bodyParser.json(), bodyParser.urlencoded({ extended: false }));
  app.use('/static', sirv(kit.publicDir, { etag: true }));
  app.get('/users/:id', h((req, res) => sendJson(res, 200, { id: req.params.id, q: req.query.q })));
  app.post('/json', h((req, res) => sendJson(res, 200, { got: req.body })));
  app.post('/form', h((req, res) => sendJson(res, 200, { got: req.body })));
  app.post('/upload', h((req, res, next) => void readMultipart(req).then((s) => sendJson(res, 200, s), next)));
  app.get('/cookies', h((_req, res) => {
    res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
    res.end('cookies');
  }));
  app.get('/redirect', h((_req, res) => void res.writeHead(302, { Location: '/target' }).end()));
  app.get('/sse', h((_req, res, next) => void writeSse(res).catch(next)));
  app.get('/boom', h((_req, _res, next) => next(new Error('boom'))));
  app.get('/throw', h(() => {
    throw new Error('thrown past Polka');
  }));
  app.get('/async', h(async (_req, res) => sendJson(res, 200, await sleep(5, { async: true }))));
  app.get('/big', h((_req, res) => void res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': BIG.length }).end(BIG)));
  app.get('/abort', h((_req, res) => {
    kit.probe.watch(res);
    pipeline(kit.probe.source(), res, () => undefined);
  }));
  app.get('/whoami', h((req, res) => sendJson(res, 200, socketFacts(req))));
  return app;
}

frameworkMatrix({
  name: 'Polka 0.5',
  build,
  // sirv answers 304 for If-None-Match only (with etag: true); it ignores If-Modified-Since.
  caps: { conditional: ['etag'] },
  extra: (harness) => {
    test('quirk: a handler that throws escapes Polka; isapi-http answers a generic 500 and reports the error', async () => {
      const before = harness().libraryErrors.length;
      const res = await harness().call('/throw');
      expect(res.statusCode).toBe(500);
      expect(res.text()).toBe('Internal Server Error\n');
      expect(harness().libraryErrors.slice(before)).toEqual([expect.objectContaining({ message: 'thrown past Polka' })]);
    });
  },
});
