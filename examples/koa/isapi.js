/**
 * The extension module: what an IIS loader DLL loads. Its default export is the IsapiExtension whose
 * HttpExtensionProc IIS calls; `isapi-http serve examples/koa/isapi.js` serves it directly.
 */
import { createExtension, SimpleHandler } from 'isapi-http';
import app from './app.js';

export default createExtension(new SimpleHandler(app), { description: 'isapi-http Koa example' });
