/**
 * createServer: a drop-in for node:http's createServer in which every request travels the ISAPI path.
 *
 * A real TCP server (net.Server) accepts connections; each is played as IIS would play it (host-connection.ts):
 * a strict HTTP/1.x parser, IIS's checks, then EmulatedHost builds a native EXTENSION_CONTROL_BLOCK with host
 * callbacks and calls the *native* HttpExtensionProc pointer of `createExtension(new SimpleHandler(...))`, exactly
 * as IIS calls the DLL's export. The handler turns the ECB back into the real IncomingMessage / ServerResponse pair
 * the app gets, through NativeEcb. Responses stream to the socket as the extension writes them.
 *
 * The server is a net.Server (as http.Server is) with http.Server's surface: listen() in all its forms, close(),
 * address(), closeAllConnections(), closeIdleConnections(), setTimeout(), the timeout / keepAliveTimeout /
 * headersTimeout / requestTimeout / maxRequestsPerSocket properties, and the events 'request', 'connection',
 * 'listening', 'close', 'error', 'clientError' and 'timeout'. It adds 'access' (one entry per request, like an IIS
 * log line). `instanceof http.Server` is false; nothing else an app can see differs.
 *
 * The extension's life follows IIS (ISAPI.md §4): GetExtensionVersion with a real HSE_VERSION_INFO in native memory
 * when the server is created (and again on the first connection after a close), TerminateExtension
 * (HSE_TERM_MUST_UNLOAD) once the server has closed and no request is outstanding. Those two are called on the
 * extension object, not through its native pointers: through the pointers createExtension enters *host mode*
 * (process-wide error hooks, the console captured into a trace pipe, the watchdog thread; handlers/host-mode.ts),
 * which serves a real w3wp, not a development server whose console belongs to the developer
 * (src/trace/host-trace.ts: createServer stays outside host mode). Every request still enters through the native
 * HttpExtensionProc pointer. koffi callbacks are registered here, never while a koffi callback runs
 * (io-completion.ts, koffi.md pitfalls).
 *
 * With `handler: 'threadpool'` the extension is createExtension(new ThreadPoolHandler(module, ...)): the app is
 * loaded from `module` in each worker thread, which does its requests' ECB I/O itself; EmulatedHost delivers the
 * workers' completions from a koffi pool thread, as IIS's I/O threads would (emulated-host.ts, O1 in windows.md).
 * There is no listener then, and no 'request' event: the app's req/res live in the workers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import { HSE_TERM_MUST_UNLOAD } from '../ecb/constants.js';
import { IsapiError, ErrorCodes, invalidArgument } from '../errors.js';
import { createExtension, type IsapiExtension } from '../handlers/create-extension.js';
import { SimpleHandler } from '../handlers/simple-handler.js';
import { ThreadPoolHandler } from '../handlers/thread-pool-handler.js';
import { toRequestListener, type AppLike } from '../handlers/to-request-listener.js';
import type { NativeEntryPoints } from '../ecb/entry-points.js';
import { EmulatedHost } from './emulated-host.js';
import { HostConnection, type AccessLogEntry, type ConnectionOwner } from './host-connection.js';
import type { HttpParseError } from './http-request-parser.js';
import { handlerOptions, hostSettings, looksLikeOptions, threadPoolOptions, validateOptions, type HostSettings, type IsapiServerOptions } from './server-options.js';

export type { AccessLogEntry } from './host-connection.js';

/** node:http's request listener. */
export type IsapiRequestListener = (req: IncomingMessage, res: ServerResponse) => unknown;

interface Runtime {
  readonly host: EmulatedHost;
  readonly extension: IsapiExtension;
  readonly points: NativeEntryPoints;
  /** The extension was built here from the 'request' listeners (and is disposed here). */
  readonly owned: boolean;
  /** Settles once this extension has been unloaded and its handler has finished terminating. */
  readonly unloaded: Promise<void>;
  readonly markUnloaded: () => void;
}

export class IsapiServer extends NetServer {
  /** Socket idle timeout in ms (node:http `server.timeout`); 0 disables. Applies to connections accepted later. */
  timeout = 0;
  /** How long an idle keep-alive connection waits for its next request, in ms; 0 disables. node:http default 5000. */
  keepAliveTimeout = 5000;
  /** Time allowed to receive a request head, in ms; 408 after it. node:http default 60000. */
  headersTimeout = 60_000;
  /** Time allowed to receive a whole request (head and body), in ms. node:http default 300000. */
  requestTimeout = 300_000;
  /** Accepted for compatibility; the head-size limit (maxHeaderSize) bounds headers instead. */
  maxHeadersCount: number | null = null;
  /** Requests per connection before it closes; 0 = no limit. */
  maxRequestsPerSocket = 0;

  private readonly settings: HostSettings;
  private readonly options: IsapiServerOptions;
  private readonly suppliedExtension: IsapiExtension | null;
  private readonly hostConnections = new Set<HostConnection>();
  private readonly owner: ConnectionOwner;
  private rt: Runtime | null = null;
  private closing = false;
  private sessions = 0;
  private lastUnload: Promise<void> = Promise.resolve();

  constructor(listener?: AppLike | null, options: IsapiServerOptions = {}) {
    const o = validateOptions(options);
    super({
      // node:http keeps half-open sockets and decides itself when to close (so does IIS).
      allowHalfOpen: true,
      noDelay: o.noDelay ?? true,
      keepAlive: o.keepAlive ?? false,
      keepAliveInitialDelay: o.keepAliveInitialDelay ?? 0,
      ...(o.highWaterMark !== undefined ? { highWaterMark: o.highWaterMark } : {}),
    });
    this.options = o;
    this.settings = hostSettings(o);
    this.suppliedExtension = o.extension ?? null;
    if (o.keepAliveTimeout !== undefined) this.keepAliveTimeout = o.keepAliveTimeout;
    if (o.headersTimeout !== undefined) this.headersTimeout = o.headersTimeout;
    if (o.requestTimeout !== undefined) this.requestTimeout = o.requestTimeout;
    if (listener !== undefined && listener !== null) {
      if (this.suppliedExtension) throw invalidArgument('createServer: give either a listener or the extension option, not both');
      if (o.handler === 'threadpool') {
        throw invalidArgument('createServer: handler "threadpool" loads the app from the module option in each worker thread; give no listener (createServer(null, { handler: "threadpool", module }))');
      }
      // A function is a node:http listener, as with http.createServer; an app object (Koa, Fastify, Hono, ...) is adapted.
      this.on('request', typeof listener === 'function' ? (listener as IsapiRequestListener) : toRequestListener(listener, { onError: o.onError }));
    }
    this.owner = {
      settings: this.settings,
      closing: () => this.closing,
      limits: () => ({
        keepAliveTimeout: this.keepAliveTimeout,
        headersTimeout: this.headersTimeout,
        requestTimeout: this.requestTimeout,
        maxRequestsPerSocket: this.maxRequestsPerSocket,
      }),
      runtime: () => {
        const rt = this.runtime();
        return { host: rt.host, proc: rt.points.HttpExtensionProc };
      },
      sessionStarted: () => void this.sessions++,
      sessionEnded: () => {
        this.sessions--;
        this.maybeRelease();
      },
      clientError: (error, socket) => this.onClientError(error, socket),
      access: (entry) => void this.emit('access', entry),
      connectionClosed: (connection) => {
        this.hostConnections.delete(connection);
        this.maybeRelease();
      },
    };
    this.on('connection', (socket: Socket) => this.accept(socket));
    this.on('listening', () => {
      this.closing = false;
    });
    this.on('close', () => this.maybeRelease());
    // Load the extension now, as IIS does on the first request to it; errors surface here, not per request.
    this.runtime();
  }

  /** Requests whose ISAPI sessions have not ended. */
  get inFlight(): number {
    return this.sessions;
  }

  /**
   * Resolves once the extension's handler can serve: with handler 'threadpool', once every worker has loaded the app
   * (and, with watch, the files are being watched); rejects with the load failure. Requests that arrive earlier wait
   * in the pool's queue, so awaiting this is optional; it surfaces a module that cannot load.
   */
  ready(): Promise<void> {
    const handler = this.rt?.extension.handler;
    return handler?.ready ? handler.ready() : Promise.resolve();
  }

  /**
   * Resolves once the extension has been unloaded after close(): TerminateExtension's drain is over, and with
   * handler 'threadpool' every worker thread has exited and the watcher is closed. Resolved while nothing is loaded.
   */
  get unloaded(): Promise<void> {
    return this.rt ? this.rt.unloaded : this.lastUnload;
  }

  /** node:http: `setTimeout([msecs][, callback])` sets `timeout` and adds a 'timeout' listener. */
  setTimeout(msecs?: number, callback?: (socket: Socket) => void): this;
  setTimeout(callback: (socket: Socket) => void): this;
  setTimeout(msecs?: number | ((socket: Socket) => void), callback?: (socket: Socket) => void): this {
    if (typeof msecs === 'function') {
      callback = msecs;
      msecs = 0;
    }
    if (msecs !== undefined && (typeof msecs !== 'number' || !Number.isFinite(msecs) || msecs < 0)) {
      throw invalidArgument(`server.setTimeout: msecs must be a non-negative number, got ${String(msecs)}`);
    }
    this.timeout = msecs ?? 0;
    if (callback !== undefined) {
      if (typeof callback !== 'function') throw invalidArgument('server.setTimeout: callback must be a function');
      this.on('timeout', callback);
    }
    return this;
  }

  /** Stop accepting; idle connections close now, busy ones after their current response (node:http ≥ 19). */
  override close(callback?: (err?: Error) => void): this {
    this.closing = true;
    super.close(callback);
    this.closeIdleConnections();
    // A server that never listened (or has no connection left) unloads the extension now.
    this.maybeRelease();
    return this;
  }

  /** Destroy every connection, busy or not. A request in progress sees its next read or write fail. */
  closeAllConnections(): void {
    for (const connection of [...this.hostConnections]) connection.destroy();
  }

  /** Close the connections that carry no request right now. */
  closeIdleConnections(): void {
    for (const connection of [...this.hostConnections]) connection.closeIfIdle();
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────────

  /** The listener handed to SimpleHandler: the app's req/res become the server's 'request' event, as on node:http. */
  private readonly dispatch = (req: IncomingMessage, res: ServerResponse): unknown => {
    const listeners = this.rawListeners('request');
    // One listener: call it directly so that a rejected promise reaches SimpleHandler's 500 path.
    if (listeners.length === 1) return Reflect.apply(listeners[0] as IsapiRequestListener, this, [req, res]);
    this.emit('request', req, res);
    return undefined;
  };

  private runtime(): Runtime {
    if (this.rt) return this.rt;
    const owned = this.suppliedExtension === null;
    const o = this.options;
    // The handler first: ThreadPoolHandler checks its own options (watch, ...) and may throw, before the host exists.
    const extension =
      this.suppliedExtension ??
      createExtension(
        o.handler === 'threadpool'
          ? new ThreadPoolHandler(o.module as string | URL, threadPoolOptions(o))
          : new SimpleHandler(this.dispatch, handlerOptions(o)),
      );
    const host = new EmulatedHost();
    let points: NativeEntryPoints;
    try {
      points = extension.nativeEntryPoints();
      const version = host.getExtensionVersion((pVer) => extension.GetExtensionVersion(pVer));
      if (!version.ok) throw new IsapiError(ErrorCodes.CALL_FAILED, 'GetExtensionVersion returned FALSE: IIS would refuse to load this extension (ISAPI.md §4)');
    } catch (error) {
      host.close();
      if (owned) extension.dispose();
      throw error;
    }
    let markUnloaded = (): void => undefined;
    const unloaded = new Promise<void>((resolve) => {
      markUnloaded = resolve;
    });
    this.rt = { host, extension, points, owned, unloaded, markUnloaded };
    return this.rt;
  }

  /** Unload the extension once the server is closed and nothing is outstanding (ISAPI.md §4). */
  private maybeRelease(): void {
    const rt = this.rt;
    if (!rt || this.listening || this.sessions > 0 || !this.closing) return;
    // A destroyed socket counts as gone: net.Server emits 'close' once they are all destroyed, before their own 'close'.
    for (const connection of this.hostConnections) if (!connection.socket.destroyed) return;
    this.rt = null;
    this.lastUnload = rt.unloaded;
    try {
      rt.host.terminateExtension((flags) => rt.extension.TerminateExtension(flags), HSE_TERM_MUST_UNLOAD);
    } catch (error) {
      process.emitWarning(`isapi-http: TerminateExtension failed: ${String(error)}`, { code: 'ISAPI_HTTP_HOST' });
    }
    // No session is open, so nothing calls the entry points or the host's callbacks any more: both go at once.
    // The handler's own termination (a thread pool's workers exiting) goes on; `unloaded` follows it.
    void rt.extension.terminated.then(rt.markUnloaded, rt.markUnloaded);
    rt.extension.dispose();
    rt.host.close();
  }

  private accept(socket: Socket): void {
    if (this.timeout > 0) {
      socket.setTimeout(this.timeout);
      socket.on('timeout', () => {
        if (!this.emit('timeout', socket)) socket.destroy();
      });
    }
    this.hostConnections.add(new HostConnection(socket, this.owner));
  }

  private onClientError(error: HttpParseError, socket: Socket): boolean {
    if (this.listenerCount('clientError') === 0) return false;
    this.emit('clientError', error, socket);
    return true;
  }
}

/** The access-log event, for typed listeners: `server.on('access', (e: AccessLogEntry) => ...)`. */
export type AccessListener = (entry: AccessLogEntry) => void;

/**
 * Same contract as node:http's createServer: `createServer(listener?, options?)`, and node's own order
 * `createServer(options, listener?)` too. A function listener is registered for 'request' as is; an app object
 * (Koa, Fastify, Hapi, NestJS, Hono, ...) is adapted with toRequestListener.
 */
export function createServer(listener?: AppLike | null, options?: IsapiServerOptions): IsapiServer;
export function createServer(options: IsapiServerOptions, listener?: AppLike | null): IsapiServer;
export function createServer(first?: AppLike | IsapiServerOptions | null, second?: AppLike | IsapiServerOptions | null): IsapiServer {
  if (first !== undefined && first !== null && typeof first !== 'function' && looksLikeOptions(first) && (second === undefined || second === null || typeof second === 'function' || !looksLikeOptions(second))) {
    return new IsapiServer((second ?? undefined) as AppLike | undefined, first as IsapiServerOptions);
  }
  if (second !== undefined && second !== null && (typeof second !== 'object' || Array.isArray(second))) {
    throw invalidArgument(`createServer(listener, options): options must be an object, got ${typeof second === 'function' ? 'a function' : String(second)}`);
  }
  return new IsapiServer(first as AppLike | undefined, (second ?? {}) as IsapiServerOptions);
}
