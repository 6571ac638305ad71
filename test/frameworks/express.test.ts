/**
 * Express 4 and 5, on the matrix. Express has its own static middleware (express.static, i.e. serve-static) and
 * body parsers, but no multipart parser: busboy reads uploads from the raw request.
 */
import { pipeline } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import express4 from 'express4';
import type { ErrorRequestHandler } from 'express';
import { BIG, readMultipart, writeSse, type Kit } from './kit.js';
import { frameworkMatrix } from './scenarios.js';

function build(e: typeof express, kit: Kit): express.Express {
  const app = e();
  app.use(e.json());
  app.use(e.urlencoded({ extended: false }));
  app.use('/static', e.static(kit.publicDir));
  app.get('/users/:id', (req, res) => void res.json({ id: req.params.id, q: req.query.q }));
  app.post('/json', (req, res) => void res.json({ got: req.body }));
  app.post('/form', (req, res) => void res.json({ got: req.body }));
  app.post('/upload', (req, res, next) => void readMultipart(req).then((s) => res.json(s), next));
  app.get('/cookies', (_req, res) => {
    res.cookie('a', '1');
    res.cookie('b', '2', { httpOnly: true });
    res.send('cookies');
  });
  app.get('/redirect', (_req, res) => res.redirect('/target'));
  app.get('/sse', (_req, res, next) => void writeSse(res).catch(next));
  app.get('/boom', () => {
    throw new Error('boom');
  });
  app.get('/async', async (_req, res) => {
    await sleep(5);
    res.json({ async: true });
  });
  app.get('/async-boom', async () => {
    await sleep(1);
    throw new Error('boom');
  });
  app.get('/big', (_req, res) => void res.type('application/octet-stream').send(BIG));
  app.get('/abort', (_req, res) => {
    kit.probe.watch(res);
    res.type('application/octet-stream');
    pipeline(kit.probe.source(), res, () => undefined);
  });
  app.get('/whoami', (req, res) => void res.json({ ip: req.ip, protocol: req.protocol }));
  const onError: ErrorRequestHandler = (error: Error, _req, res, _next) => void res.status(500).json({ error: error.message });
  app.use(onError);
  return app;
}

frameworkMatrix({ name: 'Express 4', build: (kit) => build(express4, kit) });

frameworkMatrix({
  name: 'Express 5',
  build: (kit) => build(express, kit),
  extra: (h) => {
    test('a rejected async handler reaches the error handler (Express 5 only)', async () => {
      const res = await h().call('/async-boom');
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({ error: 'boom' });
    });
  },
});
