/**
 * Connect 3, on the matrix. Connect has middleware mounting but no router, body parser, static or multipart of its
 * own: the app uses the Connect-ecosystem packages written for it (body-parser, serve-static) and busboy, and routes
 * with a small table. Its error middleware (arity 4) answers the 500.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import bodyParser from 'body-parser';
import connect from 'connect';
import serveStatic from 'serve-static';
import { BIG, readMultipart, sendJson, socketFacts, writeSse, type Kit } from './kit.js';
import { frameworkMatrix } from './scenarios.js';

type Req = IncomingMessage & { body?: unknown };
type Next = (error?: unknown) => void;
type Route = (req: Req, res: ServerResponse, next: Next, params: string[], query: URLSearchParams) => unknown;

function build(kit: Kit): connect.Server {
  const routes: [method: string, pattern: RegExp, route: Route][] = [
    ['GET', /^\/users\/([^/]+)$/, (_req, res, _next, [id], query) => sendJson(res, 200, { id, q: query.get('q') })],
    ['POST', /^\/json$/, (req, res) => sendJson(res, 200, { got: req.body })],
    ['POST', /^\/form$/, (req, res) => sendJson(res, 200, { got: req.body })],
    ['POST', /^\/upload$/, (req, res, next) => void readMultipart(req).then((s) => sendJson(res, 200, s), next)],
    [
      'GET',
      /^\/cookies$/,
      (_req, res) => {
        res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
        res.end('cookies');
      },
    ],
    ['GET', /^\/redirect$/, (_req, res) => res.writeHead(302, { Location: '/target' }).end()],
    ['GET', /^\/sse$/, (_req, res, next) => void writeSse(res).catch(next)],
    [
      'GET',
      /^\/boom$/,
      () => {
        throw new Error('boom');
      },
    ],
    ['GET', /^\/async$/, async (_req, res) => sendJson(res, 200, await sleep(5, { async: true }))],
    ['GET', /^\/big$/, (_req, res) => res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': BIG.length }).end(BIG)],
    [
      'GET',
      /^\/abort$/,
      (_req, res) => {
        kit.probe.watch(res);
        pipeline(kit.probe.source(), res, () => undefined);
      },
    ],
    ['GET', /^\/whoami$/, (req, res) => sendJson(res, 200, socketFacts(req))],
  ];

  const app = connect();
  app.use(bodyParser.json());
  app.use(bodyParser.urlencoded({ extended: false }));
  app.use('/static', serveStatic(kit.publicDir));
  app.use((req: Req, res: ServerResponse, next: Next) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    for (const [method, pattern, route] of routes) {
      const m = req.method === method ? pattern.exec(url.pathname) : null;
      if (m) return void route(req, res, next, m.slice(1) as string[], url.searchParams);
    }
    next();
  });
  app.use((error: Error, _req: IncomingMessage, res: ServerResponse, _next: Next) => sendJson(res, 500, { error: error.message }));
  return app;
}

frameworkMatrix({ name: 'Connect 3', build });
