// Types for isapi.js.
import type { IsapiExtension } from 'isapi-http';

declare const extension: IsapiExtension;
export default extension;
