/**
 * Restana 6, on the matrix. Restana has routing and res.send, and catches errors of sync and async handlers into its
 * errorHandler, but has no body parser, static middleware or multipart parser of its own: body-parser,
 * serve-static (no static middleware of its own) and busboy stand in. No req.ip / protocol: the raw socket answers.
 * toRequestListener drives it through service.callback(), composed once.
 */
import { pipeline } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import bodyParser from 'body-parser';
import restana from 'restana';
import serveStatic from 'serve-static';
import { BIG, readMultipart, socketFacts, writeSse, type Kit } from './kit.js';
import { frameworkMatrix } from './scenarios.js';

type Handler = restana.RequestHandler<restana.Protocol.HTTP>;

function build(kit: Kit): restana.Service<restana.Protocol.HTTP> {
  const app = restana({ errorHandler: (error, _req, res) => void res.send({ error: error.message }, 500) });
  app.use(bodyParser.json() as unknown as Handler);
  app.use(bodyParser.urlencoded({ extended: false }) as unknown as Handler);
  // 0http strips a use() prefix only for nested routers, not for plain middleware: mount serve-static in one.
  const files = app.newRouter();
  files.use(serveStatic(kit.publicDir) as unknown as Handler);
  app.use('/static', files);
  app.get('/users/:id', (req, res) => void res.send({ id: req.params.id, q: req.query.q }));
  app.post('/json', (req, res) => void res.send({ got: req.body }));
  app.post('/form', (req, res) => void res.send({ got: req.body }));
  app.post('/upload', async (req, res) => void res.send(await readMultipart(req)));
  app.get('/cookies', (_req, res) => {
    // res.send() refuses Set-Cookie in its headers argument (FORBIDDEN_HEADERS): set it on res.
    res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
    void res.send('cookies');
  });
  app.get('/redirect', (_req, res) => void res.send('', 302, { Location: '/target' }));
  app.get('/sse', (_req, res) => writeSse(res));
  app.get('/boom', () => {
    throw new Error('boom');
  });
  app.get('/async', async (_req, res) => void res.send(await sleep(5, { async: true })));
  app.get('/big', (_req, res) => void res.send(BIG, 200, { 'Content-Type': 'application/octet-stream' }));
  app.get('/abort', (_req, res) => {
    kit.probe.watch(res);
    pipeline(kit.probe.source(), res, () => undefined);
  });
  app.get('/whoami', (req, res) => void res.send(socketFacts(req)));
  return app;
}

frameworkMatrix({ name: 'Restana 6', build });
