/**
 * The extension module: what an IIS loader DLL loads. Its default export is the IsapiExtension whose
 * HttpExtensionProc IIS calls; `isapi-http serve examples/hono/isapi.js` serves it directly. A Hono app is a Fetch
 * app (it has `.fetch`): isapi-http converts between Node's request/response and Fetch's with @hono/node-server.
 */
import { createExtension, SimpleHandler } from 'isapi-http';
import app from './app.js';

export default createExtension(new SimpleHandler(app), { description: 'isapi-http Hono example' });
