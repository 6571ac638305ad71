/**
 * createServer's options: node:http's ServerOptions (so `http.createServer(options, app)` switches over unchanged),
 * the IIS knobs of the emulated host, and SimpleHandler's options passed through. Every mistake a user can make
 * here is a coded IsapiError, thrown by createServer before anything listens.
 */
import { IsapiError, ErrorCodes, invalidArgument } from '../errors.js';
import type { IsapiExtension } from '../handlers/create-extension.js';
import type { SimpleHandlerOptions } from '../handlers/simple-handler.js';
import type { ReloadEvent, ThreadPoolHandlerOptions, WatchOption } from '../handlers/thread-pool-handler.js';
import { DEFAULT_READ_AHEAD } from '../ecb/request-model.js';
import { DEFAULT_MAX_HEADER_SIZE } from './http-request-parser.js';

export type HandlerKind = 'simple' | 'threadpool';

export interface IsapiServerOptions extends SimpleHandlerOptions {
  /**
   * How the app runs behind the extension: 'simple' (SimpleHandler, the listener on this thread) or 'threadpool'
   * (ThreadPoolHandler: `module` is loaded in each worker thread; no listener, no 'request' event). Default 'simple'.
   */
  readonly handler?: HandlerKind;
  /** Worker threads for handler 'threadpool'. Default os.availableParallelism(). */
  readonly workers?: number;
  /** Handler 'threadpool': the app module (a path, absolute or relative to the working directory, or a URL). */
  readonly module?: string | URL;
  /** Handler 'threadpool': the module's export to serve. Default `default`. */
  readonly export?: string;
  /**
   * Handler 'threadpool': reload on change (ThreadPoolHandler's `watch`): `true` watches the module's directory tree
   * without node_modules and dot names; a list names paths and globs. With handler 'simple' it throws
   * ERR_ISAPI_RELOAD_NOT_SUPPORTED.
   */
  readonly watch?: WatchOption;
  /** Handler 'threadpool': quiet time after the last change before reloading, in ms. Default 200. */
  readonly watchDebounce?: number;
  /** Handler 'threadpool': called after each reload attempt. */
  readonly onReload?: (event: ReloadEvent) => void;
  /**
   * Emulate an IIS application at this virtual path, e.g. `/shop`: APPL_MD_PATH is `/LM/W3SVC/1/ROOT/shop`, the app
   * sees URLs without the prefix (unless keepMountPath), and requests outside it get 404 from the "IIS" side.
   */
  readonly mount?: string;
  /** Server variables to set or override (AUTH_USER, LOGON_USER, HTTPS, CERT_*, ...); null = exists without data. */
  readonly serverVariables?: Readonly<Record<string, string | null>>;
  /** uploadReadAheadSize: body bytes IIS reads into lpbData before calling the extension (ISAPI.md §5). Default 49152. */
  readonly readAhead?: number;
  /** Serve this extension (e.g. an extension module's default export) instead of building one from a listener. */
  readonly extension?: IsapiExtension;

  // ── node:http ServerOptions ────────────────────────────────────────────────────────────────────────
  /** Largest request head (request line + headers) in bytes; a larger one gets 431. Default 16384. */
  readonly maxHeaderSize?: number;
  readonly keepAliveTimeout?: number;
  readonly headersTimeout?: number;
  readonly requestTimeout?: number;
  /** Answer 400 to an HTTP/1.1 request without Host (RFC 9112 §3.2). Default true. */
  readonly requireHostHeader?: boolean;
  readonly noDelay?: boolean;
  readonly keepAlive?: boolean;
  readonly keepAliveInitialDelay?: number;
  readonly highWaterMark?: number;
  /** Accepted for compatibility; timeouts are checked per connection instead. */
  readonly connectionsCheckingInterval?: number;
  /** Not supported (must be false or absent): the request is built by the ISAPI layer. */
  readonly joinDuplicateHeaders?: boolean;
  /** Not supported (must be false or absent): the emulated front end parses strictly. */
  readonly insecureHTTPParser?: boolean;
  /** Not supported: the response is built by the ISAPI layer. */
  readonly uniqueHeaders?: readonly unknown[];
  /** Not supported (must be false or absent). */
  readonly rejectNonStandardBodyWrites?: boolean;
  /** Not supported: the request and response classes are the ISAPI layer's (real IncomingMessage/ServerResponse). */
  readonly IncomingMessage?: unknown;
  readonly ServerResponse?: unknown;
}

/** What the connections need, resolved once. */
export interface HostSettings {
  readonly readAhead: number;
  readonly maxHeaderSize: number;
  /** `/shop`, or '' at the site root. */
  readonly mountPath: string;
  /** serverVariables plus the mount's APPL_MD_PATH / APPL_PHYSICAL_PATH. */
  readonly serverVariables: Readonly<Record<string, string | null>>;
  readonly requireHostHeader: boolean;
}

const HANDLER_KEYS = ['keepMountPath', 'maxBodySize', 'timeout', 'exposeErrors', 'onError', 'logNote', 'maxDrainBytes'] as const;
/** The options that configure a ThreadPoolHandler, refused with handler 'simple'. */
const POOL_KEYS = ['workers', 'module', 'export', 'watchDebounce', 'onReload'] as const;
const HOST_KEYS = ['handler', ...POOL_KEYS, 'watch', 'mount', 'serverVariables', 'readAhead', 'extension'] as const;
const NODE_KEYS = [
  'maxHeaderSize',
  'keepAliveTimeout',
  'headersTimeout',
  'requestTimeout',
  'requireHostHeader',
  'noDelay',
  'keepAlive',
  'keepAliveInitialDelay',
  'highWaterMark',
  'connectionsCheckingInterval',
  'joinDuplicateHeaders',
  'insecureHTTPParser',
  'uniqueHeaders',
  'rejectNonStandardBodyWrites',
  'IncomingMessage',
  'ServerResponse',
] as const;
export const OPTION_KEYS: ReadonlySet<string> = new Set<string>([...HANDLER_KEYS, ...HOST_KEYS, ...NODE_KEYS]);

/** Server variables that come from the real TCP socket of each request and cannot be set. */
export const SOCKET_VARIABLES: ReadonlySet<string> = new Set(['REMOTE_ADDR', 'REMOTE_HOST', 'REMOTE_PORT', 'LOCAL_ADDR', 'SERVER_ADDR', 'SERVER_PORT']);

/** True for a plain object whose keys are all option names: `createServer(options, listener)`. */
export function looksLikeOptions(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.keys(value).every((k) => OPTION_KEYS.has(k));
}

function optionError(message: string): IsapiError {
  return invalidArgument(`createServer: ${message}`);
}

function checkInteger(name: string, value: unknown, min: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) throw optionError(`${name} must be an integer ≥ ${min}, got ${describe(value)}`);
}

function checkBoolean(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') throw optionError(`${name} must be a boolean, got ${describe(value)}`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (value === null) return 'null';
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return String(value);
}

/** `/shop/` → `/shop`; `/` or '' → '' (the site root). */
export function normaliseMount(mount: unknown): string {
  if (mount === undefined || mount === '' || mount === '/') return '';
  if (typeof mount !== 'string') throw optionError(`mount must be a virtual path such as "/shop", got ${describe(mount)}`);
  const trimmed = mount.replace(/\/+$/, '');
  if (!trimmed.startsWith('/')) throw optionError(`mount must start with "/", got ${JSON.stringify(mount)}`);
  const segments = trimmed.slice(1).split('/');
  for (const segment of segments) {
    if (segment === '' || segment === '.' || segment === '..' || !/^[A-Za-z0-9._~!$&'()*+,;=:@-]+$/.test(segment)) {
      throw optionError(`mount ${JSON.stringify(mount)} is not a plain virtual path (letters, digits and -._~ segments, no "..", "//", "%", "?" or "#")`);
    }
  }
  return trimmed;
}

function checkServerVariables(value: unknown): Record<string, string | null> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw optionError(`serverVariables must be an object of NAME: value, got ${describe(value)}`);
  const out: Record<string, string | null> = {};
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) throw optionError(`server variable name ${JSON.stringify(name)} must be letters, digits and _`);
    const upper = name.toUpperCase();
    if (SOCKET_VARIABLES.has(upper)) throw optionError(`${upper} comes from the real TCP connection of each request and cannot be set`);
    if (upper === 'APPL_MD_PATH' || upper === 'APPL_PHYSICAL_PATH') throw optionError(`set the IIS application with the mount option (e.g. mount: "/shop"), not ${upper}`);
    if (v !== null && typeof v !== 'string') throw optionError(`server variable ${upper} must be a string or null, got ${describe(v)}`);
    if (typeof v === 'string' && /[\r\n\0]/.test(v)) throw optionError(`server variable ${upper} holds CR, LF or NUL`);
    out[upper] = v;
  }
  return out;
}

export function validateOptions(options: unknown): IsapiServerOptions {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) throw optionError(`options must be an object, got ${describe(options)}`);
  const o = options as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !OPTION_KEYS.has(k));
  if (unknown.length > 0) throw optionError(`unknown option(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}; known: ${[...OPTION_KEYS].join(', ')}`);

  if (o.handler !== undefined && o.handler !== 'simple' && o.handler !== 'threadpool') {
    throw optionError(`handler must be "simple" or "threadpool", got ${describe(o.handler)}`);
  }
  checkInteger('workers', o.workers, 1);
  if (o.handler === 'threadpool') {
    const module = o.module;
    if (!(module instanceof URL) && (typeof module !== 'string' || module === '')) {
      throw optionError(`handler "threadpool" loads the app in each worker thread from its module: give module (a path or a URL), got ${describe(module)}`);
    }
    if (o.export !== undefined && (typeof o.export !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(o.export))) throw optionError(`export must be an export name, got ${describe(o.export)}`);
    checkInteger('watchDebounce', o.watchDebounce, 0);
    if (o.onReload !== undefined && typeof o.onReload !== 'function') throw optionError(`onReload must be a function, got ${describe(o.onReload)}`);
    // A function cannot reach a worker thread: the workers make their own log notes.
    if (o.logNote !== undefined) throw optionError('logNote runs on the thread that serves the request, and cannot be handed to worker threads: it applies to handler "simple" only');
  } else {
    if (o.watch !== undefined && o.watch !== false) {
      throw new IsapiError(
        ErrorCodes.RELOAD_NOT_SUPPORTED,
        'createServer: watch needs handler "threadpool" (with module): handler "simple" serves a listener already loaded on this thread and cannot reload it',
      );
    }
    const pool = POOL_KEYS.filter((k) => o[k] !== undefined);
    if (pool.length > 0) throw optionError(`${pool.join(', ')} appl${pool.length === 1 ? 'ies' : 'y'} to handler "threadpool" only`);
  }
  checkInteger('readAhead', o.readAhead, 0);
  if (typeof o.readAhead === 'number' && o.readAhead > 0x7fffffff) throw optionError('readAhead must be at most 2147483647 (IIS 7+ range, ISAPI.md §5)');
  checkInteger('maxHeaderSize', o.maxHeaderSize, 1);
  for (const name of ['keepAliveTimeout', 'headersTimeout', 'requestTimeout', 'keepAliveInitialDelay', 'highWaterMark', 'connectionsCheckingInterval', 'maxBodySize', 'timeout', 'maxDrainBytes']) {
    checkInteger(name, o[name], 0);
  }
  for (const name of ['requireHostHeader', 'noDelay', 'keepAlive', 'keepMountPath', 'exposeErrors']) checkBoolean(name, o[name]);
  for (const name of ['onError', 'logNote']) {
    if (o[name] !== undefined && typeof o[name] !== 'function') throw optionError(`${name} must be a function, got ${describe(o[name])}`);
  }
  for (const name of ['joinDuplicateHeaders', 'insecureHTTPParser', 'rejectNonStandardBodyWrites']) {
    checkBoolean(name, o[name]);
    if (o[name] === true) throw new IsapiError(ErrorCodes.NOT_SUPPORTED, `createServer: ${name} is not supported: ${name === 'insecureHTTPParser' ? 'the emulated IIS front end parses strictly' : 'the request and response are built by the ISAPI layer'}`);
  }
  for (const name of ['uniqueHeaders', 'IncomingMessage', 'ServerResponse']) {
    if (o[name] !== undefined) throw new IsapiError(ErrorCodes.NOT_SUPPORTED, `createServer: ${name} is not supported: the app gets the ISAPI layer's real IncomingMessage / ServerResponse`);
  }
  normaliseMount(o.mount);
  checkServerVariables(o.serverVariables);
  if (o.extension !== undefined) {
    const ext = o.extension as Partial<IsapiExtension> | null;
    if (ext === null || typeof ext !== 'object' || typeof ext.HttpExtensionProc !== 'function' || typeof ext.nativeEntryPoints !== 'function') {
      throw optionError('extension must be an IsapiExtension from createExtension()');
    }
    const handlerKeys = [...HANDLER_KEYS, 'handler', 'watch'].filter((k) => o[k] !== undefined);
    if (handlerKeys.length > 0) throw optionError(`${handlerKeys.join(', ')} configure the handler createServer builds; with extension, the extension's own handler is used`);
  }
  return o as IsapiServerOptions;
}

export function hostSettings(options: IsapiServerOptions): HostSettings {
  const mountPath = normaliseMount(options.mount);
  const serverVariables = checkServerVariables(options.serverVariables);
  if (mountPath !== '') {
    serverVariables.APPL_MD_PATH = `/LM/W3SVC/1/ROOT${mountPath}`;
    serverVariables.APPL_PHYSICAL_PATH = `C:\\inetpub\\wwwroot${mountPath.replace(/\//g, '\\')}\\`;
  }
  return {
    readAhead: options.readAhead ?? DEFAULT_READ_AHEAD,
    maxHeaderSize: options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE,
    mountPath,
    serverVariables,
    requireHostHeader: options.requireHostHeader ?? true,
  };
}

/** The SimpleHandler options among createServer's options. */
export function handlerOptions(options: IsapiServerOptions): SimpleHandlerOptions {
  const out: Record<string, unknown> = {};
  for (const key of HANDLER_KEYS) if (options[key] !== undefined) out[key] = options[key];
  return out as SimpleHandlerOptions;
}

/**
 * The ThreadPoolHandler options among createServer's options (handler 'threadpool'). onError keeps the SimpleHandler
 * shape createServer documents: it gets the error alone (the pool's context, kind and worker, is not passed on).
 */
export function threadPoolOptions(options: IsapiServerOptions): ThreadPoolHandlerOptions {
  const { onError, logNote: _logNote, ...simple } = handlerOptions(options);
  const out: Record<string, unknown> = { ...simple };
  for (const key of [...POOL_KEYS, 'watch'] as const) if (key !== 'module' && options[key] !== undefined) out[key] = options[key];
  if (onError) out.onError = (error: unknown) => onError(error);
  return out as ThreadPoolHandlerOptions;
}
