/**
 * One request on an emulated IIS connection: the request body coming off the socket into the extension, and the
 * response going from the extension onto the socket as it is written. It is the EmulatedHost SessionSink of that
 * request, so every HSE call the extension makes lands here, and it decides what IIS would do with the connection
 * afterwards.
 *
 * What it emulates, and the policies where IIS is undocumented (ISAPI.md §14; docs/dev-server.md lists them all):
 * - the head: `HTTP/1.1 <pszStatus>`, IIS's `Server: Microsoft-IIS/10.0` and `Date`, then pszHeader (§7.1);
 * - keep-alive only when fKeepConn is 1 AND the body is self-delimiting (Content-Length, chunked frames written by
 *   the extension, or no body), the client wants it and the server is not closing; otherwise IIS adds
 *   `Connection: close` and closes after the body (§7.2, §13 items 5–7). DONE_WITH_SESSION with HSE_STATUS_ERROR,
 *   HSE_REQ_CLOSE_CONNECTION, a body that did not match its framing, or a request body left unread also close it
 *   (HSE_STATUS_SUCCESS and SUCCESS_AND_KEEP_CONN behave alike since IIS 4, §4);
 * - each WriteClient goes to the socket at once; an async one completes when the socket has taken the bytes
 *   (its write callback), which is the backpressure the extension sees (§7.3);
 * - policy, unverified against http.sys: `Expect: 100-continue` is answered with `HTTP/1.1 100 Continue` when the
 *   body is first pulled (the read-ahead, or the first ReadClient when readAhead is 0), never after the final head;
 *   if the extension asks for the body only after its final head went out, the body counts as not sent (0 bytes)
 *   and the connection closes after the response;
 * - policy: HEAD responses carry no body on the wire even if the extension writes one;
 * - policy: if the session ends with nothing sent, the host answers 500 (IIS logs 500 for HSE_STATUS_ERROR, §4).
 */
import { ERROR_NETNAME_DELETED, HSE_STATUS_ERROR } from '../ecb/constants.js';
import type { EmulatedResult, SessionSink } from './emulated-host.js';
import { ChunkedBodyParser } from './chunked-body.js';
import { CONTINUE, iisHead } from './host-responses.js';
import { headerValues, type BodyFraming, type HttpParseError, type RequestHead } from './http-request-parser.js';
import { RequestBody } from './request-body.js';
import { analyseResponse, ResponseBodyTracker, type ResponseFraming } from './response-framing.js';

/** What a session needs from its connection. */
export interface Wire {
  /** Write to the socket; `done` runs once the socket has taken the bytes (or with an error). */
  write(bytes: Buffer, done?: (error?: Error | null) => void): void;
  /** HSE_REQ_CLOSE_CONNECTION: close the socket now. */
  closeNow(): void;
  /** Re-evaluate whether the socket should be reading. */
  flow(): void;
  /** The socket has closed or failed. */
  readonly gone: boolean;
  /** The client half-closed (FIN). */
  readonly clientEnded: boolean;
  /** The server may keep this connection for another request (not closing, request limit not reached). */
  mayKeepAlive(): boolean;
}

function connectionReset(message: string): Error {
  const error = new Error(message) as NodeJS.ErrnoException;
  error.code = 'ECONNRESET';
  return error;
}

export class WireSession implements SessionSink {
  readonly head: RequestHead;
  readonly body: RequestBody | null;
  readonly startedAt = performance.now();
  /** The client asked to keep the connection (HTTP/1.1 without `close`, HTTP/1.0 with `keep-alive`). */
  readonly clientKeepAlive: boolean;
  /** The whole request body has come off the socket. */
  bodyReceived: boolean;
  statusCode = 0;
  /** Body bytes written to the socket (after the head). */
  bytesSent = 0;

  private readonly wire: Wire;
  private readonly expectContinue: boolean;
  private lengthLeft: number;
  private readonly chunks: ChunkedBodyParser | null;
  private bodyBytes = 0;
  private continueSent = false;
  private headSent = false;
  private rawWritten = false;
  private response: ResponseFraming | null = null;
  private tracker: ResponseBodyTracker | null = null;
  private keep = false;
  private closeReason: string | null = null;
  private extensionClosed = false;

  constructor(wire: Wire, head: RequestHead, framing: BodyFraming, expectContinue: boolean) {
    this.wire = wire;
    this.head = head;
    const connection = headerValues(head, 'connection').map((v) => v.toLowerCase());
    this.clientKeepAlive = head.httpVersion === '1.0' ? connection.includes('keep-alive') : !connection.includes('close');
    this.expectContinue = expectContinue;
    this.lengthLeft = framing.kind === 'length' ? framing.length : 0;
    this.chunks = framing.kind === 'chunked' ? new ChunkedBodyParser() : null;
    this.bodyReceived = framing.kind === 'none';
    this.body = framing.kind === 'none' ? null : new RequestBody({ demand: () => wire.flow(), firstPull: () => this.firstPull() });
  }

  /** A reader waits for body bytes that have not arrived: the socket must read. */
  get wantsBody(): boolean {
    return this.body !== null && !this.bodyReceived && this.body.wanted;
  }

  // ── request body: socket → extension ───────────────────────────────────────────────────────────────

  /** Feed socket bytes into the body. Returns how many belong to it; the rest is the next pipelined request. */
  feed(chunk: Buffer): number {
    const body = this.body;
    if (!body || this.bodyReceived) return 0;
    if (this.closeReason === 'malformed chunked body') return chunk.length;
    let used: number;
    if (this.chunks) {
      try {
        used = this.chunks.push(chunk, (payload) => body.push(payload));
      } catch (error) {
        // Mid-body, the extension already runs: it sees its read fail, and the connection closes afterwards.
        this.closeReason = 'malformed chunked body';
        body.fail(connectionReset((error as HttpParseError).message));
        return chunk.length;
      }
      if (this.chunks.done) this.bodyReceived = true;
    } else {
      used = Math.min(this.lengthLeft, chunk.length);
      if (used > 0) body.push(used === chunk.length ? chunk : chunk.subarray(0, used));
      this.lengthLeft -= used;
      if (this.lengthLeft === 0) this.bodyReceived = true;
    }
    this.bodyBytes += used;
    if (this.bodyReceived) body.end();
    return used;
  }

  /** The client went away or half-closed before the body was complete. */
  abortBody(): void {
    if (this.body && !this.bodyReceived) this.body.fail(connectionReset('the client closed the connection before the request body was complete'));
  }

  private firstPull(): void {
    if (!this.expectContinue || this.continueSent || this.bodyBytes > 0) return;
    if (this.headSent) {
      // A final response already went out: RFC 9110 §10.1.1 forbids a 100 now, so the body is not coming.
      this.closeReason = 'request body refused after the final response (Expect: 100-continue)';
      this.body?.end();
      return;
    }
    this.continueSent = true;
    if (!this.wire.gone) this.wire.write(CONTINUE);
  }

  // ── SessionSink: extension → socket ─────────────────────────────────────────────────────────────────

  isKeepConn(): boolean {
    return this.clientKeepAlive && !this.wire.clientEnded && this.wire.mayKeepAlive();
  }

  isConnected(): boolean {
    return !this.wire.gone && !this.extensionClosed;
  }

  onHeaders(status: string, headerBlock: string, keepConn: boolean): void {
    if (this.headSent) return;
    this.headSent = true;
    const framing = analyseResponse(this.head.method, status, headerBlock);
    this.response = framing;
    this.tracker = new ResponseBodyTracker(framing);
    this.statusCode = framing.statusCode;
    const http10 = this.head.httpVersion === '1.0';
    this.keep = keepConn && framing.body !== 'close' && !(http10 && framing.body === 'chunked') && this.isKeepConn();
    const connection = framing.hasConnection ? '' : this.keep ? (http10 ? 'Connection: keep-alive\r\n' : '') : 'Connection: close\r\n';
    if (!this.wire.gone) this.wire.write(iisHead(status, connection, headerBlock));
  }

  onWrite(bytes: Buffer, done: (win32Error?: number) => void): void {
    if (!this.headSent) {
      // WriteClient before any header call: the bytes go out raw, with no status line (ISAPI.md §7.1, §13 item 9).
      this.rawWritten = true;
    } else if (this.head.method === 'HEAD') {
      setImmediate(done);
      return;
    } else {
      this.tracker?.push(bytes);
      this.bytesSent += bytes.length;
    }
    if (this.wire.gone) {
      setImmediate(() => done(ERROR_NETNAME_DELETED));
      return;
    }
    if (bytes.length === 0) {
      setImmediate(done);
      return;
    }
    // ERROR_NETNAME_DELETED is what an IOCP write on a reset TCP connection reports.
    this.wire.write(bytes, (error) => done(error ? ERROR_NETNAME_DELETED : 0));
  }

  onCloseConnection(): void {
    this.extensionClosed = true;
    this.closeReason ??= 'HSE_REQ_CLOSE_CONNECTION';
    this.wire.closeNow();
  }

  // ── after DONE_WITH_SESSION ────────────────────────────────────────────────────────────────────────

  /** True when IIS answered nothing at all for this session (the host then sends a 500). */
  get nothingSent(): boolean {
    return !this.headSent && !this.rawWritten;
  }

  /** Why the connection must close after this session, or null when it may carry the next request. */
  closeAfter(result: EmulatedResult | null): string | null {
    if (this.wire.gone) return 'client gone';
    if (result === null) return 'the request could not be handed to the extension';
    if (this.closeReason) return this.closeReason;
    if (result.timedOut) return 'DONE_WITH_SESSION never came';
    if (result.closedConnection) return 'HSE_REQ_CLOSE_CONNECTION';
    if (result.doneStatus === HSE_STATUS_ERROR || result.procResult === HSE_STATUS_ERROR) return 'HSE_STATUS_ERROR';
    if (this.rawWritten) return 'WriteClient without a response head';
    if (!this.headSent) return 'no response';
    if (!this.keep) return this.response?.body === 'close' ? 'body is not self-delimiting' : 'fKeepConn or the client asked to close';
    if (!this.bodyReceived) return 'request body not fully read';
    if (this.tracker && !this.tracker.complete) return 'response body does not match its framing';
    if (this.wire.clientEnded) return 'the client half-closed';
    if (!this.wire.mayKeepAlive()) return 'server closing';
    return null;
  }
}
