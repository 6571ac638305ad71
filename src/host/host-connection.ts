/**
 * One client TCP connection of createServer, played as IIS (http.sys + the ISAPI module) would play it:
 *
 * bytes → RequestHeadReader (strict HTTP/1.x head) → IIS-side checks (400/404/417/431/501/505) → a RequestModel
 * with the connection's real addresses → EmulatedHost.execute() building a native ECB → the extension's native
 * HttpExtensionProc → … → DONE_WITH_SESSION → keep the connection for the next request, or close it.
 *
 * Requests on one connection run one at a time, in order: pipelined requests wait in the buffer until the response
 * before them is complete, so they are answered in order (RFC 9112 §9.3.2).
 *
 * Flow control: while a request body is being received the socket reads only when the extension waits for body
 * bytes (read-ahead or ReadClient, request-body.ts); otherwise it reads to find the next head, and to notice a
 * client that goes away, but holds at most PIPELINE_BUFFER bytes of requests that are not being served yet.
 *
 * Closing: `finish()` ends our side (FIN after the queued writes) and keeps reading and discarding for LINGER_MS,
 * so a client still sending a body it was refused gets the response instead of a reset (a lingering close, as
 * Apache and http.sys do).
 */
import type { Socket } from 'node:net';
import type { EmulatedHost, EmulatedResult, ExtensionProc } from './emulated-host.js';
import { RequestModel, UNKNOWN_LENGTH, type RequestDescription } from '../ecb/request-model.js';
import { HTTPAPI_SERVER, hostResponse } from './host-responses.js';
import { bodyFraming, headerCount, headerValues, HttpParseError, RequestHeadReader, type BodyFraming, type RequestHead } from './http-request-parser.js';
import type { HostSettings } from './server-options.js';
import { WireSession, type Wire } from './wire-session.js';

const PIPELINE_BUFFER = 64 * 1024;
const LINGER_MS = 2000;
const EMPTY = Buffer.alloc(0);

/** One line of the emulated IIS log, emitted as the server's 'access' event. */
export interface AccessLogEntry {
  readonly method: string;
  /** The request target as sent. */
  readonly url: string;
  readonly statusCode: number;
  /** From the parsed head to the end of the session. */
  readonly ms: number;
  /** Response body bytes written. */
  readonly bytesSent: number;
  readonly remoteAddress: string | undefined;
  /** Answered by the emulated IIS itself (400, 404 outside the mount, 501 upgrade, ...) rather than the extension. */
  readonly byHost: boolean;
}

export interface ConnectionLimits {
  readonly keepAliveTimeout: number;
  readonly headersTimeout: number;
  readonly requestTimeout: number;
  readonly maxRequestsPerSocket: number;
}

/** What a connection needs from its server. */
export interface ConnectionOwner {
  readonly settings: HostSettings;
  /** close() was called: finish the current request, then close. */
  closing(): boolean;
  /** The server's current timeouts and request limit (node:http properties a program may change at any time). */
  limits(): ConnectionLimits;
  /** The host and the extension's HttpExtensionProc (created on demand). */
  runtime(): { host: EmulatedHost; proc: ExtensionProc };
  sessionStarted(): void;
  sessionEnded(): void;
  /** A malformed request: true when a 'clientError' listener took charge of the socket. */
  clientError(error: HttpParseError, socket: Socket): boolean;
  access(entry: AccessLogEntry): void;
  connectionClosed(connection: HostConnection): void;
}

function isUpgrade(head: RequestHead): boolean {
  const connection = headerValues(head, 'connection').map((v) => v.toLowerCase());
  if (!connection.includes('upgrade') || headerCount(head, 'upgrade') === 0) return false;
  // h2c is an offer a server may ignore (RFC 9110 §7.8): curl --http2 sends it, and the request is served as HTTP/1.1.
  return headerValues(head, 'upgrade').some((p) => !/^h2c$/i.test(p));
}

export class HostConnection implements Wire {
  readonly socket: Socket;
  private readonly owner: ConnectionOwner;
  private readonly reader: RequestHeadReader;
  private buffered: Buffer = EMPTY;
  private session: WireSession | null = null;
  private requests = 0;
  private ending = false;
  private closed = false;
  private readEnded = false;
  private paused = false;
  private headersTimer: NodeJS.Timeout | null = null;
  private requestTimer: NodeJS.Timeout | null = null;
  private keepAliveTimer: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;

  constructor(socket: Socket, owner: ConnectionOwner) {
    this.socket = socket;
    this.owner = owner;
    this.reader = new RequestHeadReader(owner.settings.maxHeaderSize);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    // Errors (ECONNRESET, EPIPE) are followed by 'close'; the session learns of them through its I/O.
    socket.on('error', () => undefined);
    socket.on('close', () => this.onClose());
    this.startHeadersTimer();
  }

  // ── Wire ───────────────────────────────────────────────────────────────────────────────────────────

  get gone(): boolean {
    return this.closed || this.socket.destroyed;
  }

  get clientEnded(): boolean {
    return this.readEnded;
  }

  mayKeepAlive(): boolean {
    const max = this.owner.limits().maxRequestsPerSocket;
    return !this.owner.closing() && !this.ending && (max <= 0 || this.requests < max);
  }

  write(bytes: Buffer, done?: (error?: Error | null) => void): void {
    if (this.gone || this.socket.writableEnded) {
      if (done) setImmediate(() => done(new Error('the connection is closed')));
      return;
    }
    this.socket.write(bytes, done);
  }

  closeNow(): void {
    // Called from inside the extension's ServerSupportFunction call: destroy once that call has returned, so the
    // socket's failing write callbacks cannot re-enter the extension in the middle of it.
    process.nextTick(() => this.socket.destroy());
  }

  /** Read when someone needs bytes; pause otherwise (see the module comment). */
  flow(): void {
    if (this.gone) return;
    let read: boolean;
    if (this.ending) read = true;
    else if (!this.session) read = true;
    else if (!this.session.bodyReceived) read = this.session.wantsBody;
    else read = this.buffered.length < PIPELINE_BUFFER;
    if (read && this.paused) {
      this.paused = false;
      this.socket.resume();
    } else if (!read && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /** No request in progress and nothing buffered: what closeIdleConnections() closes. */
  get idle(): boolean {
    return this.session === null && this.buffered.length === 0 && !this.ending;
  }

  /** Close our side gracefully (see the module comment). */
  finish(): void {
    if (this.ending || this.gone) return;
    this.ending = true;
    this.clearTimers();
    this.buffered = EMPTY;
    this.socket.end();
    this.flow();
    this.afterOurFin(() => {
      if (this.readEnded) return this.socket.destroy();
      this.lingerTimer = setTimeout(() => this.socket.destroy(), LINGER_MS);
      this.lingerTimer.unref();
    });
  }

  /** Run `fn` once everything we wrote has left for the kernel (never destroy a socket with writes queued). */
  private afterOurFin(fn: () => void): void {
    if (this.socket.writableFinished) fn();
    else this.socket.once('finish', fn);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** closeIdleConnections(): an idle connection closes at once, after any bytes still queued for it. */
  closeIfIdle(): boolean {
    if (!this.idle || this.gone) return false;
    if (this.socket.writableLength > 0) this.finish();
    else this.destroy();
    return true;
  }

  // ── socket events ──────────────────────────────────────────────────────────────────────────────────

  private onData(chunk: Buffer): void {
    if (this.ending || this.gone) return;
    const session = this.session;
    if (session && !session.bodyReceived) {
      const used = session.feed(chunk);
      if (used < chunk.length) this.append(chunk.subarray(used));
      if (session.bodyReceived) this.clearRequestTimer();
    } else {
      this.append(chunk);
      if (!session) this.next();
    }
    this.flow();
  }

  private append(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
  }

  private onEnd(): void {
    this.readEnded = true;
    if (this.ending) return this.afterOurFin(() => this.socket.destroy());
    if (this.session) {
      // A half-close ends the body if it was incomplete; the response still goes out, then the connection closes.
      this.session.abortBody();
      return;
    }
    this.finish();
  }

  private onClose(): void {
    this.closed = true;
    this.clearTimers();
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.session?.abortBody();
    this.owner.connectionClosed(this);
  }

  // ── requests ───────────────────────────────────────────────────────────────────────────────────────

  /** Start the next request if a complete head is buffered. */
  private next(): void {
    if (this.session || this.ending || this.gone || this.buffered.length === 0) return;
    this.clearKeepAliveTimer();
    if (!this.headersTimer) this.startHeadersTimer();
    let taken: { head: RequestHead; used: number } | null;
    try {
      taken = this.reader.take(this.buffered);
    } catch (error) {
      return this.malformed(error as HttpParseError);
    }
    if (!taken) return;
    this.clearHeadersTimer();
    this.buffered = taken.used === this.buffered.length ? EMPTY : this.buffered.subarray(taken.used);
    this.requests++;
    this.startRequest(taken.head);
  }

  private malformed(error: HttpParseError): void {
    error.rawPacket = this.buffered;
    this.buffered = EMPTY;
    this.clearTimers();
    this.owner.access({ method: '-', url: '-', statusCode: error.statusCode, ms: 0, bytesSent: 0, remoteAddress: this.socket.remoteAddress, byHost: true });
    if (this.owner.clientError(error, this.socket)) {
      this.ending = true;
      return;
    }
    // http.sys answers malformed requests itself, in the kernel (host-responses.ts).
    const response = hostResponse(error.statusCode, error.message, { close: true, server: HTTPAPI_SERVER });
    this.write(response.bytes);
    this.finish();
  }

  private startRequest(head: RequestHead): void {
    const started = performance.now();
    let framing: BodyFraming;
    try {
      framing = bodyFraming(head);
      if (head.httpVersion === '1.1' && this.owner.settings.requireHostHeader && headerCount(head, 'host') === 0) {
        throw new HttpParseError(400, 'HPE_INVALID_HEADER_TOKEN', 'an HTTP/1.1 request must carry a Host header (RFC 9112 §3.2)');
      }
      if (headerCount(head, 'host') > 1) throw new HttpParseError(400, 'HPE_INVALID_HEADER_TOKEN', 'more than one Host header');
    } catch (error) {
      return this.malformed(error as HttpParseError);
    }
    const hasBody = framing.kind !== 'none';
    const refuse = (status: number, detail: string, extraHeaders?: string): void => {
      // The body is not read: close after the answer rather than parse it as the next request (ISAPI.md §8, KB 810957).
      const close = hasBody || !this.keepsAliveWithoutSession(head);
      const response = hostResponse(status, detail, { close, head: head.method === 'HEAD', extraHeaders });
      this.write(response.bytes);
      this.owner.access({ method: head.method, url: head.target, statusCode: status, ms: performance.now() - started, bytesSent: 0, remoteAddress: this.socket.remoteAddress, byHost: true });
      if (close) this.finish();
      else this.afterResponse();
    };

    if (head.method === 'CONNECT') return refuse(501, 'CONNECT is not implemented: an ISAPI extension cannot tunnel a connection.');
    if (isUpgrade(head)) {
      return refuse(
        501,
        `Upgrade to ${headerValues(head, 'upgrade').join(', ')} is not implemented: an ISAPI extension answers requests through ` +
          'WriteClient and cannot take over the connection (WebSockets on IIS need the WebSocket module, not ISAPI).',
      );
    }
    const expect = headerValues(head, 'expect').map((v) => v.toLowerCase());
    // HTTP/1.0 clients cannot ask for 100-continue; the header is ignored then (RFC 9110 §10.1.1).
    if (head.httpVersion === '1.1' && expect.some((v) => v !== '100-continue')) {
      return refuse(417, `Only "Expect: 100-continue" is supported, got ${JSON.stringify(expect.join(', '))}.`);
    }
    if (framing.kind === 'length' && framing.length >= UNKNOWN_LENGTH) {
      // cbTotalBytes cannot announce 4 GiB or more except as "unknown" (ISAPI.md §5); this emulator does not go there.
      return refuse(413, 'Request bodies of 4 GiB or more are not supported by this emulated host.');
    }
    const mount = this.owner.settings.mountPath;
    if (mount !== '' && !this.underMount(head.url, mount)) {
      return refuse(404, `${head.url.split('?')[0]} is outside the IIS application mounted at ${mount}.`);
    }
    this.runSession(head, framing, head.httpVersion === '1.1' && expect.length > 0, started);
  }

  /** IIS matches application paths case-insensitively, on the decoded path. */
  private underMount(url: string, mount: string): boolean {
    const raw = url.split('?')[0] as string;
    let path = raw;
    try {
      path = decodeURIComponent(raw);
    } catch {
      // Keep the raw path: IIS would reject a bad escape later anyway.
    }
    const lower = path.toLowerCase();
    const m = mount.toLowerCase();
    return lower === m || lower.startsWith(m + '/');
  }

  private keepsAliveWithoutSession(head: RequestHead): boolean {
    const connection = headerValues(head, 'connection').map((v) => v.toLowerCase());
    const wants = head.httpVersion === '1.0' ? false : !connection.includes('close');
    return wants && !this.readEnded && this.mayKeepAlive();
  }

  private describe(head: RequestHead, framing: BodyFraming, session: WireSession): RequestDescription {
    const s = this.socket;
    // REMOTE_*, LOCAL_ADDR and SERVER_PORT come from the real socket, as http.sys reports them (ISAPI.md §6).
    const socketVariables: Record<string, string> = {
      REMOTE_ADDR: s.remoteAddress ?? '',
      REMOTE_HOST: s.remoteAddress ?? '',
      REMOTE_PORT: String(s.remotePort ?? ''),
      LOCAL_ADDR: s.localAddress ?? '',
      SERVER_ADDR: s.localAddress ?? '',
      SERVER_PORT: String(s.localPort ?? ''),
    };
    return {
      method: head.method,
      url: head.url,
      headers: head.headers,
      httpVersion: head.httpVersion,
      readAhead: this.owner.settings.readAhead,
      serverVariables: { ...this.owner.settings.serverVariables, ...socketVariables },
      body: session.body ?? undefined,
      unknownLength: framing.kind === 'chunked',
      asReceived: true,
    };
  }

  private runSession(head: RequestHead, framing: BodyFraming, expectContinue: boolean, started: number): void {
    const session = new WireSession(this, head, framing, expectContinue);
    let model: RequestModel;
    try {
      model = new RequestModel(this.describe(head, framing, session));
    } catch (error) {
      return this.malformed(new HttpParseError(400, 'HPE_INVALID_HEADER_TOKEN', (error as Error).message));
    }
    this.session = session;
    // Bytes that came with the head belong to the body first; the rest is the next request.
    if (this.buffered.length > 0 && !session.bodyReceived) {
      const rest = this.buffered;
      const used = session.feed(rest);
      this.buffered = used === rest.length ? EMPTY : rest.subarray(used);
    }
    if (!session.bodyReceived) this.startRequestTimer();
    this.flow();
    let runtime: { host: EmulatedHost; proc: ExtensionProc };
    try {
      runtime = this.owner.runtime();
    } catch (error) {
      this.session = null;
      process.emitWarning(`isapi-http: the extension is not available: ${String((error as Error)?.message ?? error)}`, { code: 'ISAPI_HTTP_HOST' });
      this.write(hostResponse(503, 'The ISAPI extension is not available.', { close: true }).bytes);
      return this.finish();
    }
    this.owner.sessionStarted();
    // doneTimeoutMs 0: a streamed session may run as long as its client (downloads, server-sent events).
    runtime.host.execute(model, runtime.proc, { sink: session, doneTimeoutMs: 0 }).then(
      (result) => this.sessionEnded(session, result, started),
      () => this.sessionEnded(session, null, started),
    );
  }

  private sessionEnded(session: WireSession, result: EmulatedResult | null, started: number): void {
    this.owner.sessionEnded();
    this.clearRequestTimer();
    if (this.session === session) this.session = null;
    if (result !== null && session.nothingSent && !this.gone) {
      this.write(hostResponse(500, 'The ISAPI extension ended the request without sending a response.', { close: true, head: session.head.method === 'HEAD' }).bytes);
      session.statusCode = 500;
    }
    const reason = session.closeAfter(result);
    this.owner.access({
      method: session.head.method,
      url: session.head.target,
      statusCode: session.statusCode,
      ms: performance.now() - started,
      bytesSent: session.bytesSent,
      remoteAddress: this.socket.remoteAddress,
      byHost: false,
    });
    if (reason !== null) {
      if (result === null) return this.destroy();
      return this.finish();
    }
    this.afterResponse();
  }

  /** The response is complete and the connection stays: the next pipelined request, or wait for one. */
  private afterResponse(): void {
    if (this.gone || this.ending) return;
    if (this.owner.closing()) return this.finish();
    this.reader.reset();
    if (this.buffered.length > 0) {
      // Pipelined: start on a later turn so a long pipeline cannot starve the event loop.
      setImmediate(() => {
        this.next();
        this.flow();
      });
    } else if (this.readEnded) {
      this.finish();
    } else {
      this.startKeepAliveTimer();
    }
    this.flow();
  }

  // ── timers (node:http's headersTimeout, requestTimeout, keepAliveTimeout) ──────────────────────────

  private startHeadersTimer(): void {
    const ms = this.owner.limits().headersTimeout;
    if (ms <= 0) return;
    this.headersTimer = setTimeout(() => {
      this.headersTimer = null;
      if (this.session || this.ending) return;
      this.timeoutResponse('the request head did not arrive in time (headersTimeout)');
    }, ms);
    this.headersTimer.unref();
  }

  private startRequestTimer(): void {
    const ms = this.owner.limits().requestTimeout;
    if (ms <= 0) return;
    this.requestTimer = setTimeout(() => {
      this.requestTimer = null;
      const session = this.session;
      if (!session || session.bodyReceived) return;
      // The extension is running: it sees its body read fail; the connection closes.
      session.abortBody();
      this.destroy();
    }, ms);
    this.requestTimer.unref();
  }

  private startKeepAliveTimer(): void {
    const ms = this.owner.limits().keepAliveTimeout;
    if (ms <= 0) return;
    this.keepAliveTimer = setTimeout(() => {
      this.keepAliveTimer = null;
      this.closeIfIdle();
    }, ms);
    this.keepAliveTimer.unref();
  }

  private timeoutResponse(detail: string): void {
    if (this.buffered.length > 0) {
      this.write(hostResponse(408, detail, { close: true, server: HTTPAPI_SERVER }).bytes);
      this.owner.access({ method: '-', url: '-', statusCode: 408, ms: 0, bytesSent: 0, remoteAddress: this.socket.remoteAddress, byHost: true });
    }
    this.finish();
  }

  private clearHeadersTimer(): void {
    if (this.headersTimer) clearTimeout(this.headersTimer);
    this.headersTimer = null;
  }

  private clearRequestTimer(): void {
    if (this.requestTimer) clearTimeout(this.requestTimer);
    this.requestTimer = null;
  }

  private clearKeepAliveTimer(): void {
    if (this.keepAliveTimer) clearTimeout(this.keepAliveTimer);
    this.keepAliveTimer = null;
  }

  private clearTimers(): void {
    this.clearHeadersTimer();
    this.clearRequestTimer();
    this.clearKeepAliveTimer();
  }
}

