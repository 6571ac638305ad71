/**
 * One request/response exchange: an ECB becomes a real `http.IncomingMessage` / `http.ServerResponse` pair on an
 * IsapiSocket, the app runs, and the session ends with exactly one DONE_WITH_SESSION whose status tells the truth.
 * This module plays the part of Node's `_http_server.js` for that one request: it is the "server" Node's
 * ServerResponse expects around it.
 *
 * The lifecycle, each step pinned by a test:
 * - success: res 'finish' → socket.end() → all WriteClient completions in → DONE(SUCCESS[_AND_KEEP_CONN]) →
 *   socket 'close' → res 'close' (Node's onServerResponseClose, installed by assignSocket) → req 'close' (P5, P8);
 * - an error before the head: a 500 with a generic body (the stack goes to the log, P14);
 * - an error after the head, res.destroy(), a WriteClient failure: CLOSE_CONNECTION, DONE(ERROR); res 'close'
 *   without 'finish', req 'aborted';
 * - a client that goes away mid-upload: req 'aborted' and an ECONNRESET error, as on node:http;
 * - the per-request timeout: a 503 before the head, a closed connection after it.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Ecb } from '../ecb/ecb.js';
import { HSE_STATUS_ERROR, HSE_STATUS_SUCCESS, HSE_STATUS_SUCCESS_AND_KEEP_CONN } from '../ecb/constants.js';
import { UNKNOWN_LENGTH } from '../ecb/request-model.js';
import { IsapiError, ErrorCodes } from '../errors.js';
import { ConnectionInfo } from './connection-info.js';
import { framingFor, type Framing } from './framing.js';
import { forwardDrain, setRawHeaders } from './node-internals.js';
import { hasHeader, parseAllRaw, rawFromAllHttp } from './raw-headers.js';
import { IsapiRequestInfo } from './request-info.js';
import { requestTarget } from './request-url.js';
import { parseHead, renderIsapiHeaders } from './response-head.js';
import { IsapiSocket } from './isapi-socket.js';

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => unknown;

/** `req` as the app receives it: a real IncomingMessage with `isapi` as an own property. */
export interface IsapiIncomingMessage extends IncomingMessage {
  readonly isapi: IsapiRequestInfo;
}

export interface ExchangeOptions {
  /** Keep the IIS application's virtual path in `req.url` instead of stripping it. Default false. */
  readonly keepMountPath?: boolean;
  /** Largest request body accepted; a larger one gets 413 without being read. Default: no limit. */
  readonly maxBodySize?: number;
  /** Per-request timeout in ms: 503 before the head, a closed connection after. Default 120000; 0 disables. */
  readonly timeout?: number;
  /** Put error stacks in 500 bodies. Development only; default false. */
  readonly exposeErrors?: boolean;
  /** Where errors go (the stack never goes to the client by default). Default: console.error. */
  readonly onError?: (error: unknown, req?: IncomingMessage) => void;
  /** The short note written to lpszLogData (truncated to 79 bytes). Default: the elapsed milliseconds. */
  readonly logNote?: (req: IncomingMessage, res: ServerResponse, elapsedMs: number) => string;
  /** Largest unread body drained after the response so the connection can be reused. Default 1 MiB. */
  readonly maxDrainBytes?: number;
}

export const DEFAULT_TIMEOUT_MS = 120_000;
const DEFAULT_MAX_DRAIN = 1024 * 1024;

function defaultOnError(error: unknown, req?: IncomingMessage): void {
  console.error(req ? `isapi-http: ${req.method} ${req.url} failed:` : 'isapi-http:', error);
}

export class Exchange {
  readonly ecb: Ecb;
  readonly socket: IsapiSocket;
  readonly req: IsapiIncomingMessage;
  readonly res: ServerResponse;
  /** Resolves once DONE_WITH_SESSION has been called and the streams have closed. Never rejects. */
  readonly settled: Promise<void>;

  private readonly options: ExchangeOptions;
  private readonly started = process.hrtime.bigint();
  private framing: Framing | null = null;
  private sessionEnded = false;
  private closedConnection = false;
  private timer: NodeJS.Timeout | null = null;
  private resolveSettled!: () => void;

  constructor(ecb: Ecb, options: ExchangeOptions = {}) {
    this.ecb = ecb;
    this.options = options;
    this.settled = new Promise((resolve) => {
      this.resolveSettled = resolve;
    });
    const info = new ConnectionInfo(ecb);
    this.socket = new IsapiSocket(ecb, info, {
      sendHead: (head, alone) => this.sendHead(head, alone),
      end: (callback) => this.endSession(callback),
      abort: (error, callback) => this.abortSession(error, callback),
    });
    this.req = this.createRequest(options);
    this.res = new ServerResponse(this.req);
    // IIS decides whether the client keeps the connection (HSE_REQ_IS_KEEP_CONN); Node then writes
    // `Connection: close` itself when it may not (lib/_http_outgoing.js _storeHeader).
    if (this.req.httpVersionMajor === 1 && this.req.httpVersionMinor === 1) this.res.shouldKeepAlive = ecb.isKeepConn();
    this.res.assignSocket(this.socket as unknown as Socket);
    this.wire();
  }

  private createRequest(options: ExchangeOptions): IsapiIncomingMessage {
    const ecb = this.ecb;
    const req = new IncomingMessage(this.socket as unknown as Socket) as IsapiIncomingMessage;
    const target = requestTarget(ecb, options.keepMountPath === true);
    req.method = ecb.method;
    req.url = target.url;
    const protocol = ecb.getServerVariableString('SERVER_PROTOCOL') ?? 'HTTP/1.1';
    const m = /^HTTP\/(\d+)(?:\.(\d+))?$/i.exec(protocol.trim());
    req.httpVersionMajor = m ? Number(m[1]) : 1;
    req.httpVersionMinor = m ? Number(m[2] ?? 0) : 1;
    req.httpVersion = `${req.httpVersionMajor}.${req.httpVersionMinor}`;
    const allRaw = ecb.getServerVariableString('ALL_RAW');
    let raw: string[];
    if (allRaw !== null) raw = parseAllRaw(allRaw);
    else {
      // Never serve a request with its headers silently gone: fall back to ALL_HTTP, or refuse (HSE_STATUS_ERROR).
      const allHttp = ecb.getServerVariableString('ALL_HTTP');
      if (allHttp === null) throw new IsapiError(ErrorCodes.CALL_FAILED, 'neither ALL_RAW nor ALL_HTTP could be read: the request headers are unknown');
      raw = rawFromAllHttp(allHttp, ecb.getServerVariableString('CONTENT_TYPE'), ecb.getServerVariableString('CONTENT_LENGTH'));
    }
    if (!hasHeader(raw, 'host')) {
      // Host is always present for the app (P9: Hono answers 400 without it); take it from IIS's own view.
      const name = ecb.getServerVariableString('SERVER_NAME') ?? 'localhost';
      const port = ecb.getServerVariableString('SERVER_PORT');
      const secure = (ecb.getServerVariableString('HTTPS') ?? '').toLowerCase() === 'on';
      const defaultPort = secure ? '443' : '80';
      raw.unshift('Host', port && port !== defaultPort ? `${name}:${port}` : name);
    }
    setRawHeaders(req, raw);
    Object.defineProperty(req, 'isapi', { value: new IsapiRequestInfo(ecb, target.rawUrl, target.mountPath), enumerable: false });
    return req;
  }

  private wire(): void {
    const { socket, req, res } = this;
    // Node's parser feeds the body into req and pauses the socket when req is full (parserOnBody); we do the same.
    socket.pause();
    socket.on('data', (chunk: Buffer) => {
      if (!req.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.endRequestBody());
    if (socket.bodyComplete && socket.bytesRead === 0) this.endRequestBody();
    socket.on('drain', () => forwardDrain(res));
    // Errors on the socket are reported through the request and response, as on node:http.
    socket.on('error', () => undefined);
    res.on('finish', () => this.onFinish());
    socket.on('close', () => this.onClose());
    const limit = this.options.timeout ?? DEFAULT_TIMEOUT_MS;
    if (limit > 0) this.timer = setTimeout(() => this.onTimeout(), limit);
  }

  private endRequestBody(): void {
    if (this.req.complete) return;
    this.req.complete = true;
    this.req.push(null);
  }

  /** Run the app. A synchronous throw or a rejected promise takes the error path. */
  run(listener: RequestListener): void {
    const max = this.options.maxBodySize;
    const total = this.ecb.totalBytes;
    if (max !== undefined && total !== UNKNOWN_LENGTH && total > max) return this.reject(413, 'Payload Too Large');
    if (max !== undefined && total === UNKNOWN_LENGTH) this.watchBodySize(max);
    try {
      const result = listener(this.req, this.res);
      if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
        (result as PromiseLike<unknown>).then(undefined, (error: unknown) => this.fail(error));
      }
    } catch (error) {
      this.fail(error);
    }
  }

  private watchBodySize(max: number): void {
    this.socket.on('data', () => {
      if (this.socket.bytesRead > max) {
        if (!this.res.headersSent) this.reject(413, 'Payload Too Large');
        else this.socket.destroy(new Error('request body larger than maxBodySize'));
      }
    });
  }

  /** Answer with a library status (413, 500, 503) when the app has not sent its head yet. */
  private reject(status: number, text: string, detail?: string): void {
    const res = this.res;
    if (res.headersSent || res.writableEnded) return void this.socket.destroy();
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    const body = Buffer.from(detail ? `${text}\n\n${detail}\n` : `${text}\n`);
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Content-Length', body.length);
    if (status === 503) res.setHeader('Retry-After', '1');
    // The request body will not be read: do not pretend the connection can carry another request.
    if (status === 413) res.setHeader('Connection', 'close');
    res.end(body);
  }

  /** An error from the app: 500 before the head, a closed connection after it. */
  fail(error: unknown): void {
    try {
      (this.options.onError ?? defaultOnError)(error, this.req);
    } catch {
      // A failing logger must not take the request down with it.
    }
    if (this.sessionEnded) return;
    if (!this.res.headersSent && !this.res.writableEnded) {
      const detail = this.options.exposeErrors ? String((error as Error)?.stack ?? error) : undefined;
      return this.reject(500, 'Internal Server Error', detail);
    }
    this.socket.destroy(error instanceof Error ? error : new Error(String(error)));
  }

  private onTimeout(): void {
    this.timer = null;
    if (this.sessionEnded) return;
    const error = new Error(`request timed out after ${this.options.timeout ?? DEFAULT_TIMEOUT_MS} ms`);
    try {
      (this.options.onError ?? defaultOnError)(error, this.req);
    } catch {
      // ignore
    }
    if (!this.res.headersSent && !this.res.writableEnded) {
      // The app may still write later; those writes fail quietly instead of crashing the process.
      this.res.on('error', () => undefined);
      return this.reject(503, 'Service Unavailable');
    }
    this.socket.destroy(error);
  }

  // ── hooks called by the socket ─────────────────────────────────────────────────────────────────────

  private sendHead(head: string, alone: boolean): { dechunk: boolean } {
    const parsed = parseHead(head);
    const framing = framingFor({ httpVersionMajor: this.req.httpVersionMajor, httpVersionMinor: this.req.httpVersionMinor, method: this.req.method ?? 'GET', head: parsed });
    this.framing = framing;
    this.ecb.httpStatusCode = parsed.statusCode;
    this.ecb.sendResponseHeaders({ status: parsed.status, headers: renderIsapiHeaders(parsed, framing.drop), keepConn: framing.keepConn });
    // Streaming responses must not sit in IIS's response buffer: flushHeaders(), SSE and chunked or
    // close-delimited bodies ask IIS to flush each write (HSE_REQ_SET_FLUSH_FLAG, ISAPI.md §7.2; semantics unverified).
    if (alone || !parsed.names.has('content-length')) this.ecb.setFlushFlag(true);
    return { dechunk: framing.dechunk };
  }

  private onFinish(): void {
    const { req, socket } = this;
    // A body already received but never read (a GET the app ignored): let it end, as Node's req._dump() does,
    // so that req closes without 'aborted'.
    if (req.complete && !req.readableEnded && req.listenerCount('data') === 0) req.resume();
    if (!req.complete) {
      // Node drains an unread body so the connection can carry the next request (resOnFinish → req._dump()).
      // Past maxDrainBytes, or with an unknown length, closing is cheaper than reading.
      const total = this.ecb.totalBytes;
      const left = total === UNKNOWN_LENGTH ? Infinity : total - socket.bytesRead;
      if (left <= (this.options.maxDrainBytes ?? DEFAULT_MAX_DRAIN)) {
        req.resume();
        socket.resume();
        return void socket.once('end', () => socket.end());
      }
      this.closeConnection();
    }
    socket.end();
  }

  private closeConnection(): void {
    if (this.closedConnection || this.ecb.done) return;
    this.closedConnection = true;
    try {
      this.ecb.closeConnection();
    } catch {
      // The host could not close it; DONE with an error status still ends the session.
    }
  }

  private finishSession(status: number): void {
    if (this.sessionEnded) return;
    this.sessionEnded = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ecb = this.ecb;
    try {
      this.socket.info.snapshot();
      if (this.res.headersSent) ecb.httpStatusCode = this.res.statusCode;
      const elapsed = Number(process.hrtime.bigint() - this.started) / 1e6;
      ecb.logData = this.options.logNote ? this.options.logNote(this.req, this.res, elapsed) : `isapi-http ${elapsed.toFixed(1)}ms`;
    } catch {
      // Logging fields are best effort; the session must still end.
    }
    ecb.doneWithSession(status);
  }

  private endSession(callback: (error?: Error | null) => void): void {
    const keep = this.framing?.keepConn === true && !this.closedConnection;
    try {
      this.finishSession(keep ? HSE_STATUS_SUCCESS_AND_KEEP_CONN : HSE_STATUS_SUCCESS);
    } catch (error) {
      return callback(error as Error);
    }
    callback();
    // Both directions are done: close, which makes Node emit res 'close' (onServerResponseClose).
    process.nextTick(() => this.socket.destroy());
  }

  private abortSession(_error: Error | null, callback: () => void): void {
    if (this.sessionEnded) return callback();
    this.closeConnection();
    // DONE only once nothing is outstanding (ISAPI.md §9: after CLOSE_CONNECTION, wait for the completion).
    this.socket.io.whenIdle(() => {
      try {
        this.finishSession(HSE_STATUS_ERROR);
      } catch {
        // nothing more can be done for this session
      }
      callback();
    });
  }

  private onClose(): void {
    const req = this.req;
    if (!req.destroyed) {
      if (req.complete && req.readableEnded) req.destroy();
      else if (req.complete && !this.socket.errored) {
        // The body arrived whole but the app is still reading it: close once it has, without 'aborted'.
        req.once('end', () => req.destroy());
        req.resume();
      } else {
        const error = new Error('aborted') as NodeJS.ErrnoException;
        error.code = 'ECONNRESET';
        req.destroy(error);
      }
    }
    this.resolveSettled();
  }
}
