/**
 * Host mode (src/handlers/host-mode.ts), observed in a child process so that jest's own uncaught-exception
 * handling cannot hide or cause anything.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { HSE_STATUS_ERROR } from '../../src/ecb/constants.js';
import { createExtension } from '../../src/handlers/create-extension.js';
import { SimpleHandler } from '../../src/handlers/simple-handler.js';
import { inject } from '../../src/testing/inject.js';

const root = join(__dirname, '../..');

test('under a native host, async app errors are contained per request and the hooks leave with TerminateExtension', () => {
  const out = execFileSync(process.execPath, ['--import', './tools/ts-register.mjs', 'test/fixtures/host-mode-scenario.ts'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  const f = JSON.parse(out.trim().split('\n').pop() as string);
  expect(f.listenersAfterNativeEntryPoints).toBe(f.listenersBefore); // asking for the pointers changes nothing yet
  expect(f.getExtensionVersion).toBe(1);
  expect(f.listenersInHostMode).toBe(f.listenersBefore + 2);
  expect(f.beforeHead).toEqual({ status: '500 Internal Server Error', body: 'Internal Server Error\n', doneCount: 1 });
  expect(f.afterHead).toEqual({ status: '200 OK', closed: true, doneStatus: HSE_STATUS_ERROR, doneCount: 1 });
  expect(f.reject).toEqual({ body: 'fine' });
  expect(f.stillServing).toBe('ok');
  expect(f.logged).toEqual(expect.arrayContaining(['async boom', 'late boom', 'rejected in the app']));
  expect(f.terminate).toBe(1);
  expect(f.listenersAfterTerminate).toBe(f.listenersBefore);
});

test('outside host mode (tests, inject) the library installs no process-wide hook', async () => {
  const before = [process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')];
  const ext = createExtension(new SimpleHandler((_req, res) => res.end('x')));
  ext.nativeEntryPoints();
  await inject((_req, res) => res.end('y'), '/');
  expect([process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')]).toEqual(before);
  ext.dispose();
});

test('terminate() closes what is still in flight after drainTimeout, ending each session once', async () => {
  const handler = new SimpleHandler(() => undefined, { drainTimeout: 30, timeout: 0 });
  const ext = createExtension(handler);
  const { MockEcb } = await import('../../src/ecb/mock-ecb.js');
  const ecb = await MockEcb.from({ url: '/never' });
  ext.dispatch(ecb);
  ext.TerminateExtension(2);
  await ext.terminated;
  const record = await ecb.whenDone();
  expect(record.doneCount).toBe(1);
  expect(record.doneStatus).toBe(HSE_STATUS_ERROR);
  expect(record.closedConnection).toBe(true);
});
