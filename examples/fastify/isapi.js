/**
 * The extension module: what an IIS loader DLL loads. Its default export is the IsapiExtension whose
 * HttpExtensionProc IIS calls; `isapi-http serve examples/fastify/isapi.js` serves it directly. isapi-http runs
 * Fastify's ready() once, before the first request, then hands each request to Fastify's router.
 */
import { createExtension, SimpleHandler } from 'isapi-http';
import app from './app.js';

export default createExtension(new SimpleHandler(app), { description: 'isapi-http Fastify example' });
