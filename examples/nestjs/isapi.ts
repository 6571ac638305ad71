/**
 * The extension module: what an IIS loader DLL loads. Its default export is the IsapiExtension whose
 * HttpExtensionProc IIS calls.
 *
 * NestFactory.create() is asynchronous, but the default export must exist as soon as the module has loaded. So the
 * handler serves a (req, res) listener that waits for the app: toRequestListener, what SimpleHandler does with an
 * app, runs Nest's init() once before the first request. (In an ES module, top-level await is the other way:
 * `export default createExtension(new SimpleHandler(await createApp()))`. This file is also compiled to CommonJS
 * for jest, where top-level await does not exist.)
 */
import { createExtension, SimpleHandler, toRequestListener } from 'isapi-http';
import { createApp } from './app.js';

// Under IIS, Nest's warnings and errors are worth keeping (they reach `isapi-http trace`); its start-up chatter is not.
const listener = createApp(['error', 'warn']).then((app) => toRequestListener(app));
// If the app cannot be built, every request fails with 500 and the error is reported; not a crash at load.
listener.catch(() => undefined);

export default createExtension(new SimpleHandler(async (req, res) => (await listener)(req, res)), { description: 'isapi-http NestJS example' });
