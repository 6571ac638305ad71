/**
 * Load through the C host: 10,000 requests from 32 host threads (IIS-like), through SimpleHandler and through
 * ThreadPoolHandler, with zero failures and byte-exact bodies. Not a timing test: it asserts correctness under load.
 */
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { HSE_STATUS_PENDING } from '../../src/ecb/constants.js';
import { RequestModel } from '../../src/ecb/request-model.js';
import { createExtension } from '../../src/handlers/create-extension.js';
import { SimpleHandler } from '../../src/handlers/simple-handler.js';
import { ThreadPoolHandler } from '../../src/handlers/thread-pool-handler.js';
import type { IsapiHandler } from '../../src/handlers/handler.js';
import { CHost } from '../native/c-host.js';

const N = 10_000;

function body(i: number): Buffer {
  // Sizes from 0 to ~60 KB, so some bodies fit the read-ahead and some need ReadClient.
  const b = Buffer.allocUnsafe((i * 7919) % 61_000);
  for (let j = 0; j < b.length; j++) b[j] = (i + j * 31) & 0xff;
  return b;
}

const echo = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => res.end(Buffer.concat(parts)));
};

describe.each([
  ['SimpleHandler', () => new SimpleHandler(echo)],
  // The C host does not wait for a PENDING session before starting the next request, so all 10,000 arrive at once:
  // the queue must hold them (past maxQueue they would correctly get 503, as the overload test shows).
  ['ThreadPoolHandler', () => new ThreadPoolHandler(join(__dirname, '../fixtures/apps/pool-app.mjs'), { workers: 2, maxQueue: N })],
] as [string, () => IsapiHandler][])('%s under 32 host threads', (_name, make) => {
  test(`${N} requests, zero failures, byte-exact`, async () => {
    const handler = make();
    const ext = createExtension(handler);
    if (handler instanceof ThreadPoolHandler) await handler.ready();
    const host = new CHost();
    try {
      const bodies = Array.from({ length: N }, (_, i) => body(i));
      const digests = bodies.map((b) => createHash('sha1').update(b).digest('hex'));
      const models = bodies.map((b, i) => new RequestModel({ method: 'POST', url: `/echo?i=${i}`, body: b }));
      const results = await host.executeMany(models, ext.nativeEntryPoints().HttpExtensionProc, { threads: 32, timeoutMs: 60_000 });
      const failures = results.filter(
        (r, i) =>
          r.timedOut ||
          r.procResult !== HSE_STATUS_PENDING ||
          r.doneCount !== 1 ||
          r.status !== '200 OK' ||
          Object.values(r.violations).some((n) => n !== 0) ||
          createHash('sha1').update(r.body).digest('hex') !== digests[i],
      );
      expect(failures.length).toBe(0);
    } finally {
      ext.TerminateExtension(2);
      await ext.terminated;
      ext.dispose();
      await host.close();
    }
  }, 180_000);
});
