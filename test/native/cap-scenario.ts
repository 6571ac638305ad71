/**
 * Run in a child process by host-contract.test.ts, with ISAPI_HTTP_MAX_ASYNC_CALLS set low: 64 host threads call
 * HttpExtensionProc either through the host's gate (cap below max_async_calls) or straight into koffi. The second
 * overflows koffi's async slots, which kills the process (koffi.md 3c "Concurrency limit"); the first must not.
 * Prints one JSON line when it survives.
 *
 *   ISAPI_HTTP_MAX_ASYNC_CALLS=24 node --import ./tools/ts-register.mjs test/native/cap-scenario.ts gated|ungated
 */
import { RequestModel } from '../../src/ecb/request-model.js';
import { createExtension } from '../../src/handlers/create-extension.js';
import { SimpleHandler } from '../../src/handlers/simple-handler.js';
import { CHost } from './c-host.js';

const mode = process.argv[2] === 'ungated' ? 'ungated' : 'gated';
const ext = createExtension(new SimpleHandler((_req, res) => res.end('ok')));
const points = ext.nativeEntryPoints();
const host = new CHost({ maxJsCalls: 16 });
const models = Array.from({ length: 1000 }, (_, i) => new RequestModel({ url: `/r/${i}` }));
const results = await host.executeMany(models, points.HttpExtensionProc, { threads: 64, bypassGate: mode === 'ungated' });
const stats = host.stats();
ext.dispose();
await host.close();
console.log(JSON.stringify({ mode, ok: results.filter((r) => r.status === '200 OK' && r.doneCount === 1).length, peakInFlight: stats.peakInFlight, capWaits: stats.capWaits }));
