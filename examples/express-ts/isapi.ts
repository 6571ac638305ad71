/**
 * The extension module: what an IIS loader DLL loads. Its default export is the IsapiExtension whose
 * HttpExtensionProc IIS calls (see README.md for running it locally).
 */
import { createExtension, SimpleHandler } from 'isapi-http';
import app from './app.js';

export default createExtension(new SimpleHandler(app), { description: 'isapi-http Express TypeScript example' });
