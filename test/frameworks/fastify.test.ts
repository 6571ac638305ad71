/**
 * Fastify 4 and 5, on the matrix, each with the plugin majors made for it: @fastify/static 7 / 10 and
 * @fastify/multipart 8 / 10. toRequestListener runs ready() once, then hands each request to fastify.routing.
 * Fastify parses JSON itself; the urlencoded form uses its own addContentTypeParser (no @fastify/formbody needed).
 * Both majors share the code below: their APIs used here are the same, only the types differ.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import fastifyMultipart, { type Multipart } from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyPluginCallback } from 'fastify5';
import fastify4 from 'fastify4';
import fastify4Multipart from 'fastify4-multipart';
import fastify4Static from 'fastify4-static';
import fastify5 from 'fastify5';
import { BIG, sseStream, type Kit, type UploadSummary } from './kit.js';
import { frameworkMatrix } from './scenarios.js';

/** @fastify/multipart augments the 'fastify' module's types; these apps are typed through the 'fastify5' alias. */
interface MultipartRequest {
  parts(): AsyncIterableIterator<Multipart>;
}

interface Plugins {
  readonly static: unknown;
  readonly multipart: unknown;
}

function build(app: FastifyInstance, plugins: Plugins, kit: Kit): FastifyInstance {
  kit.onClose(() => app.close());
  void app.register(plugins.static as FastifyPluginCallback<{ root: string; prefix: string }>, { root: kit.publicDir, prefix: '/static/' });
  void app.register(plugins.multipart as FastifyPluginCallback<{ limits: { fileSize: number } }>, { limits: { fileSize: 32 * 1024 * 1024 } });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  app.setErrorHandler((error: Error, _request, reply) => void reply.code(500).send({ error: error.message }));

  app.get<{ Params: { id: string }; Querystring: { q?: string } }>('/users/:id', async (request) => ({ id: request.params.id, q: request.query.q }));
  app.post('/json', async (request) => ({ got: request.body }));
  app.post('/form', async (request) => ({ got: request.body }));
  app.post('/upload', async (request) => {
    const summary: UploadSummary = { fields: {}, files: [] };
    for await (const part of (request as unknown as MultipartRequest).parts()) {
      if (part.type === 'file') {
        const hash = createHash('sha256');
        let size = 0;
        for await (const chunk of part.file as AsyncIterable<Buffer>) {
          size += chunk.length;
          hash.update(chunk);
        }
        summary.files.push({ field: part.fieldname, filename: part.filename, size, sha256: hash.digest('hex') });
      } else {
        summary.fields[part.fieldname] = String(part.value);
      }
    }
    return summary;
  });
  app.get('/cookies', async (_request, reply) => {
    void reply.header('set-cookie', ['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
    return 'cookies';
  });
  app.get('/redirect', (_request, reply) => void reply.redirect('/target'));
  app.get('/sse', (_request, reply) => void reply.type('text/event-stream').header('cache-control', 'no-cache').send(sseStream()));
  app.get('/boom', () => {
    throw new Error('boom');
  });
  app.get('/async', async () => {
    await sleep(5);
    return { async: true };
  });
  app.get('/big', (_request, reply) => void reply.type('application/octet-stream').send(BIG));
  app.get('/abort', (_request, reply) => {
    kit.probe.watch(reply.raw);
    void reply.type('application/octet-stream').send(kit.probe.source());
  });
  app.get('/whoami', async (request) => ({ ip: request.ip, protocol: request.protocol }));
  return app;
}

frameworkMatrix({
  name: 'Fastify 4',
  build: (kit) => build(fastify4() as unknown as FastifyInstance, { static: fastify4Static, multipart: fastify4Multipart }, kit),
});
frameworkMatrix({
  name: 'Fastify 5',
  build: (kit) => build(fastify5(), { static: fastifyStatic, multipart: fastifyMultipart }, kit),
});
