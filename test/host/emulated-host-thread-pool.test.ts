/**
 * EmulatedHost driving ThreadPoolHandler: the worker's completion routine is called from a koffi pool thread, as
 * IIS calls completions from its I/O threads. Before, the host called it on the JS thread and deadlocked with the
 * worker (docs/windows.md O1); these requests then never finished.
 */
import { join } from 'node:path';
import { createExtension, ThreadPoolHandler, type IsapiExtension } from '../../src/index.js';
import { EmulatedHost } from '../../src/testing.js';

let ext: IsapiExtension;
let pool: ThreadPoolHandler;
let host: EmulatedHost;

beforeAll(async () => {
  pool = new ThreadPoolHandler(join(__dirname, '../fixtures/apps/pool-app.mjs'), { workers: 2 });
  ext = createExtension(pool);
  await pool.ready();
  host = new EmulatedHost();
});

afterAll(async () => {
  host.close();
  await pool.terminate();
});

test('an echoed 3 MB body comes back byte-exact through a worker (async reads and writes with completions)', async () => {
  const body = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31 + 7) & 0xff;
  const result = await host.execute({ method: 'POST', url: '/echo', body, readAhead: 48 * 1024 }, ext.nativeEntryPoints().HttpExtensionProc);
  expect(result.violations).toEqual([]);
  expect(result.timedOut).toBeFalsy();
  expect(result.status).toBe('200 OK');
  expect(result.httpStatusCode).toBe(200);
  expect(result.body.equals(body)).toBe(true);
  expect(result.doneCount).toBe(1);
});

test('20 concurrent requests all complete, and the host frees every block', async () => {
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => host.execute({ method: 'POST', url: '/echo', body: `request ${i}` }, ext.nativeEntryPoints().HttpExtensionProc)),
  );
  expect(results.map((r) => r.body.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `request ${i}`));
  expect(results.every((r) => r.httpStatusCode === 200 && r.doneCount === 1 && r.violations.length === 0)).toBe(true);
  await new Promise((r) => setImmediate(r)); // blocks are freed after the call that ended the session returns
  expect(host.allocatedBlocks).toBe(0);
});
