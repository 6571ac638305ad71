/**
 * A Fastify 5 app: JSON-schema validation of the body, query string and route parameters (a 400 naming the field,
 * before the handler runs), a response schema that decides what is serialized, a hook that reads the Windows user
 * IIS authenticated (request.raw.isapi.user), and Fastify's own 404. Nothing here depends on ISAPI at run time:
 * under plain node:http, request.raw.isapi is undefined. `isapi-http serve examples/fastify/app.js` serves it.
 *
 * In this repository Fastify 5 is installed under the npm alias `fastify5` (the tests run Fastify 4 and 5 side by
 * side). In your own app: `import Fastify from 'fastify'`.
 */
import Fastify from 'fastify5';

const order = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    item: { type: 'string' },
    quantity: { type: 'integer' },
    owner: { type: 'string' },
  },
};

export function createApp() {
  const orders = new Map();
  let nextId = 1;
  const app = Fastify({ logger: false });

  // One hook for every request: what IIS says about the caller, on the Fastify request.
  app.decorateRequest('windowsUser', null);
  app.addHook('onRequest', async (request) => {
    request.windowsUser = request.raw.isapi?.user ?? null;
  });

  app.get('/api/hello', { schema: { querystring: { type: 'object', properties: { name: { type: 'string', maxLength: 40 } } } } }, async (request) => ({
    message: `Hello, ${request.query.name || 'world'}!`,
  }));

  app.get('/api/me', async (request, reply) => {
    const user = request.windowsUser;
    if (!user) return reply.code(401).send({ error: 'anonymous: enable Windows authentication in IIS' });
    return { name: user.name, authType: user.authType };
  });

  app.post(
    '/api/orders',
    {
      schema: {
        body: {
          type: 'object',
          required: ['item', 'quantity'],
          additionalProperties: false, // Fastify's Ajv removes unlisted properties (removeAdditional) rather than refusing
          properties: { item: { type: 'string', minLength: 1 }, quantity: { type: 'integer', minimum: 1 } },
        },
        response: { 201: order },
      },
    },
    async (request, reply) => {
      const created = { id: nextId++, ...request.body, owner: request.windowsUser?.name ?? 'anonymous', internal: 'not in the response schema' };
      orders.set(created.id, created);
      return reply.code(201).header('Location', `/api/orders/${created.id}`).send(created);
    },
  );

  app.get(
    '/api/orders/:id',
    { schema: { params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } }, response: { 200: order } } },
    async (request, reply) => {
      const found = orders.get(request.params.id); // an integer: the params schema coerced it
      if (!found) return reply.code(404).send({ error: `no order ${request.params.id}` });
      return found;
    },
  );

  return app;
}

const app = createApp();
export default app;
