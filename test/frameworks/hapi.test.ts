/**
 * Hapi 21, on the matrix, with @hapi/inert for static files. Hapi parses JSON, forms and multipart itself (its
 * payload options); toRequestListener runs initialize() once and hands requests to server.listener ('request').
 * The error handler is an onPreResponse extension that rewrites 500s, as Hapi apps do.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import Hapi from '@hapi/hapi';
import Inert from '@hapi/inert';
import { BIG, fileSummary, sseStream, type Kit } from './kit.js';
import { frameworkMatrix } from './scenarios.js';

interface Annotated {
  readonly filename: string;
  readonly payload: Buffer;
}

async function build(kit: Kit): Promise<Hapi.Server> {
  const server = Hapi.server({ debug: false });
  kit.onClose(() => server.stop());
  await server.register(Inert);
  server.ext('onPreResponse', (request, h) => {
    const response = request.response;
    if ('isBoom' in response && response.isBoom && response.output.statusCode === 500) return h.response({ error: response.message }).code(500);
    return h.continue;
  });
  const cookie = { isSecure: false, isHttpOnly: false, isSameSite: false, path: '/' } as const;
  server.route([
    { method: 'GET', path: '/static/{param*}', handler: { directory: { path: kit.publicDir } } },
    { method: 'GET', path: '/users/{id}', handler: (request) => ({ id: request.params.id, q: request.query.q }) },
    { method: 'POST', path: '/json', handler: (request) => ({ got: request.payload }) },
    { method: 'POST', path: '/form', handler: (request) => ({ got: request.payload }) },
    {
      method: 'POST',
      path: '/upload',
      options: { payload: { output: 'data', parse: true, multipart: { output: 'annotated' }, maxBytes: 32 * 1024 * 1024 } },
      handler: (request) => {
        const payload = request.payload as { note: string; file: Annotated };
        return { fields: { note: payload.note }, files: [fileSummary('file', payload.file.filename, payload.file.payload)] };
      },
    },
    { method: 'GET', path: '/cookies', handler: (_request, h) => h.response('cookies').state('a', '1', cookie).state('b', '2', { ...cookie, isHttpOnly: true }) },
    { method: 'GET', path: '/redirect', handler: (_request, h) => h.redirect('/target') },
    { method: 'GET', path: '/sse', handler: (_request, h) => h.response(sseStream()).type('text/event-stream').header('cache-control', 'no-cache') },
    {
      method: 'GET',
      path: '/boom',
      handler: () => {
        throw new Error('boom');
      },
    },
    {
      method: 'GET',
      path: '/async',
      handler: async () => {
        await sleep(5);
        return { async: true };
      },
    },
    { method: 'GET', path: '/big', handler: (_request, h) => h.response(BIG).type('application/octet-stream') },
    {
      method: 'GET',
      path: '/abort',
      handler: (request, h) => {
        kit.probe.watch(request.raw.res);
        return h.response(kit.probe.source()).type('application/octet-stream');
      },
    },
    {
      method: 'GET',
      path: '/whoami',
      // Hapi has no per-request protocol: request.url is built from server.info.protocol (see the quirk test below).
      handler: (request) => ({ ip: request.info.remoteAddress, protocol: (request.raw.req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http' }),
    },
    { method: 'GET', path: '/url-protocol', handler: (request) => ({ protocol: request.url.protocol }) },
  ]);
  return server;
}

frameworkMatrix({
  name: 'Hapi 21',
  build,
  extra: (h) => {
    test('quirk: request.url.protocol is the server-wide protocol (http:), even when HTTPS=on; the socket knows better', async () => {
      const res = await h().call({ url: '/url-protocol', serverVariables: { HTTPS: 'on' } });
      expect(res.json()).toEqual({ protocol: 'http:' });
    });
  },
});
