/**
 * IsapiSocket: the `net.Socket` stand-in under a request's IncomingMessage and ServerResponse. It is a real
 * `stream.Duplex` (pitfalls P3, P4), so Node's own http code drives it exactly as it drives a TCP socket, and
 * every capture happens here, never on a prototype a framework could swap (P1, P2).
 *
 * - Readable side: the request body. lpbData first, then async ReadClient (HSE_REQ_ASYNC_READ_CLIENT), one
 *   read at a time and only on demand: readableHighWaterMark is 0, so nothing is read before the app (through
 *   IncomingMessage#_read → socket.resume()) asks for it. No synchronous read ever runs on the JS thread.
 * - Writable side: what ServerResponse writes. The first bytes are Node's rendered head (`res._header`); they
 *   go out through the exchange as SEND_RESPONSE_HEADER_EX. Everything after is the body, sent by async
 *   WriteClient; the write callback runs at the completion, so `writableLength`, `drain` and `res.write()`'s
 *   return value give real backpressure (P7).
 * - `_final` and `_destroy` hand over to the exchange, which ends the session (DONE_WITH_SESSION, once).
 */
import { Duplex } from 'node:stream';
import type { Ecb } from '../ecb/ecb.js';
import { UNKNOWN_LENGTH } from '../ecb/request-model.js';
import { IsapiError, ErrorCodes } from '../errors.js';
import type { ConnectionInfo } from './connection-info.js';
import { ChunkedDecoder } from './chunked-decoder.js';
import { IoQueue } from './io-queue.js';
import { attachedResponse, markHadError, renderedHead } from './node-internals.js';

/** What the socket asks of the exchange that owns it. */
export interface SocketHooks {
  /** The head is complete: send it. Returns whether the body that follows must be de-chunked. */
  sendHead(head: string, alone: boolean): { dechunk: boolean };
  /** All writes are done and the response is complete: end the session, then call back. */
  end(callback: (error?: Error | null) => void): void;
  /** The socket is being destroyed (error, abort, res.destroy()): end the session, then call back. */
  abort(error: Error | null, callback: () => void): void;
}

const READ_SIZE = 64 * 1024;

function connectionReset(message: string, cause?: unknown): Error {
  const error = new Error(message, cause === undefined ? undefined : { cause }) as NodeJS.ErrnoException;
  error.code = 'ECONNRESET';
  return error;
}

interface WriteChunk {
  chunk: unknown;
  encoding: BufferEncoding | 'buffer';
}

export class IsapiSocket extends Duplex {
  readonly ecb: Ecb;
  readonly io = new IoQueue();
  readonly info: ConnectionInfo;
  /** Body bytes delivered to the readable side so far (read-ahead included). */
  bytesRead = 0;
  /** Body bytes handed to WriteClient so far (head excluded). */
  bytesWritten = 0;
  /** True once the whole request body has been pushed. */
  bodyComplete = false;

  private readonly hooks: SocketHooks;
  private readonly total: number;
  private readInFlight = false;
  private pendingHead: string | null = null;
  private headDone = false;
  private decoder: ChunkedDecoder | null = null;
  private timeoutMs = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(ecb: Ecb, info: ConnectionInfo, hooks: SocketHooks) {
    // autoDestroy as on net.Socket: a write error must destroy the socket, not only emit 'error'.
    super({ allowHalfOpen: true, decodeStrings: false, readableHighWaterMark: 0, autoDestroy: true, emitClose: true });
    this.ecb = ecb;
    this.info = info;
    this.hooks = hooks;
    this.total = ecb.totalBytes;
    const first = ecb.availableBytes > 0 ? ecb.readAhead() : null;
    if (first && first.length > 0) {
      this.bytesRead = first.length;
      this.push(first);
    }
    if (this.total !== UNKNOWN_LENGTH && this.bytesRead >= this.total) this.endBody();
  }

  // ── net.Socket surface read by Node's internals and by frameworks (P4) ─────────────────────────────

  get remoteAddress(): string | undefined {
    return this.info.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.info.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.info.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.info.localAddress;
  }
  get localPort(): number | undefined {
    return this.info.localPort;
  }
  /** True over TLS (HTTPS=on / SERVER_PORT_SECURE=1), as on a TLSSocket; undefined otherwise, as on a net.Socket. */
  get encrypted(): true | undefined {
    return this.info.encrypted ? true : undefined;
  }
  get readyState(): string {
    return this.destroyed ? 'closed' : 'open';
  }
  get connecting(): boolean {
    return false;
  }
  get pending(): boolean {
    return false;
  }

  address(): { address: string; family: string; port: number } | Record<string, never> {
    const address = this.info.localAddress;
    if (address === undefined) return {};
    return { address, family: address.includes(':') ? 'IPv6' : 'IPv4', port: this.info.localPort ?? 0 };
  }

  /** An idle timer, as net.Socket#setTimeout: 'timeout' fires after `ms` without reads or writes; 0 disables. */
  setTimeout(ms: number, callback?: () => void): this {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`socket timeout must be a non-negative number, got ${ms}`);
    this.timeoutMs = ms;
    if (callback) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    this.touch();
    return this;
  }

  private touch(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.timeoutMs > 0 && !this.destroyed) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.emit('timeout');
      }, this.timeoutMs);
      // Like a net.Socket's timeout, it must not keep the process alive by itself.
      this.timer.unref();
    }
  }

  /** Nagle and TCP keep-alive belong to IIS; accepted and ignored, as srvx and @hono/node-server do. */
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }
  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  /** @hono/node-server calls this (honojs/node-server#374). */
  destroySoon(): void {
    if (this.writable) this.end();
    else this.destroy();
  }

  // ── readable side: the request body ────────────────────────────────────────────────────────────────

  private endBody(): void {
    if (this.bodyComplete) return;
    this.bodyComplete = true;
    this.push(null);
  }

  override _read(): void {
    if (this.bodyComplete || this.readInFlight || this.destroyed) return;
    this.readInFlight = true;
    this.io.run((release) => {
      if (this.destroyed || this.bodyComplete) {
        this.readInFlight = false;
        return release();
      }
      const want = this.total === UNKNOWN_LENGTH ? READ_SIZE : Math.min(READ_SIZE, this.total - this.bytesRead);
      const target = Buffer.allocUnsafe(want);
      try {
        this.ecb.readClientAsync(target, (error, n) => {
          release();
          this.readInFlight = false;
          this.onRead(target, error, n);
        });
      } catch (error) {
        release();
        this.readInFlight = false;
        this.destroy(connectionReset('reading the request body failed', error));
      }
    });
  }

  private onRead(target: Buffer, error: IsapiError | null, n: number): void {
    if (this.destroyed) return;
    if (error) return void this.destroy(connectionReset('the client connection failed while reading the body', error));
    this.touch();
    if (n === 0) {
      // ReadClient yields 0 bytes when the client has gone (ISAPI.md §8). With a known length that is an abort.
      if (this.total !== UNKNOWN_LENGTH && this.bytesRead < this.total) {
        return void this.destroy(connectionReset('aborted'));
      }
      return this.endBody();
    }
    this.bytesRead += n;
    // Hand the app a right-sized chunk; copy small reads so a 64 KiB buffer is not pinned for a few bytes.
    const chunk = n < target.length >> 1 ? Buffer.from(target.subarray(0, n)) : target.subarray(0, n);
    this.push(chunk);
    if (this.total !== UNKNOWN_LENGTH && this.bytesRead >= this.total) this.endBody();
  }

  // ── writable side: the response ────────────────────────────────────────────────────────────────────

  override _write(chunk: unknown, encoding: BufferEncoding | 'buffer', callback: (error?: Error | null) => void): void {
    this._writev([{ chunk, encoding }], callback);
  }

  override _writev(chunks: WriteChunk[], callback: (error?: Error | null) => void): void {
    this.touch();
    let body: Buffer[] = [];
    try {
      body = this.takeHead(chunks);
    } catch (error) {
      return callback(error as Error);
    }
    let data = body.length === 1 ? (body[0] as Buffer) : Buffer.concat(body);
    if (this.decoder && data.length > 0) {
      try {
        data = this.decoder.push(data);
      } catch (error) {
        return callback(error as Error);
      }
    }
    if (data.length === 0) return callback();
    this.writeAll(data, callback);
  }

  /** Send `data` with async WriteClient; a short completion re-sends the remainder. */
  private writeAll(data: Buffer, done: (error?: Error | null) => void): void {
    // Node runs a failed write's callback (and OutgoingMessage's onFinish) before it destroys the socket, so the
    // failure must be marked first or the response would still emit 'finish' (pitfall P5/P14).
    const callback = (error?: Error | null): void => {
      if (error) markHadError(this);
      done(error);
    };
    this.io.run((release) => {
      if (this.ecb.done) {
        release();
        return callback(connectionReset('the session has ended'));
      }
      try {
        this.ecb.writeClientAsync(data, (error, n) => {
          release();
          this.touch();
          if (error) return callback(connectionReset('the client connection failed while writing the response', error));
          this.bytesWritten += n;
          if (n > 0 && n < data.length) return this.writeAll(data.subarray(n), done);
          callback();
        });
      } catch (error) {
        release();
        callback(error as Error);
      }
    });
  }

  /**
   * Split Node's head off the first writes. Node always writes `res._header` first, either alone or glued to the
   * first body bytes in one string (lib/_http_outgoing.js `_send`), so the head is the prefix of the string chunks.
   */
  private takeHead(chunks: WriteChunk[]): Buffer[] {
    const body: Buffer[] = [];
    for (const { chunk, encoding } of chunks) {
      if (this.headDone) {
        body.push(toBuffer(chunk, encoding));
        continue;
      }
      if (this.headAccumulated === '' && isInterimResponse(chunk, encoding)) {
        // res.writeContinue() / res.writeEarlyHints() write a complete 1xx response straight to the socket, before
        // the real head. ISAPI sends exactly one head per request (SEND_RESPONSE_HEADER_EX, ISAPI.md §7.1) and has
        // no interim responses, so they are dropped (they are advisory, RFC 9110 §15.2) instead of being taken
        // for a head that never matches `_header`, which used to fail the whole response.
        continue;
      }
      if (this.pendingHead === null) {
        const res = attachedResponse(this);
        const head = res ? renderedHead(res) : null;
        if (head === null) {
          throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, 'bytes were written to the ISAPI socket before any response head; write through the ServerResponse');
        }
        this.pendingHead = head;
      }
      const text = typeof chunk === 'string' ? chunk : toBuffer(chunk, encoding).toString('latin1');
      const need = this.pendingHead;
      if (text.length < need.length) {
        if (!need.startsWith(text)) throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, 'the response head was interleaved with other writes');
        this.pendingHead = need.slice(text.length);
        this.headAccumulated += headBytes(text, chunk, encoding);
        continue;
      }
      if (!text.startsWith(need)) throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, 'the response head was interleaved with other writes');
      const head = this.headAccumulated + headBytes(need, chunk, encoding);
      this.headAccumulated = '';
      this.headDone = true;
      const rest = text.length > need.length;
      const res = attachedResponse(this);
      const alone = !rest && chunks.length === 1 && !(res?.writableEnded ?? true);
      if (this.hooks.sendHead(head, alone).dechunk) this.decoder = new ChunkedDecoder();
      if (rest) {
        body.push(typeof chunk === 'string' ? Buffer.from(chunk.slice(need.length), encoding === 'buffer' ? 'utf8' : encoding) : toBuffer(chunk, encoding).subarray(need.length));
      }
    }
    return body;
  }

  private headAccumulated = '';

  override _final(callback: (error?: Error | null) => void): void {
    this.io.whenIdle(() => this.hooks.end(callback));
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (error) markHadError(this);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.hooks.abort(error, () => callback(error));
  }
}

/** A complete interim response (`HTTP/1.1 1xx ...` up to its blank line), other than 101 (an upgrade's final head). */
const INTERIM = /^HTTP\/1\.[01] 1(?!01)\d\d [^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n$/;

function isInterimResponse(chunk: unknown, encoding: BufferEncoding | 'buffer'): boolean {
  if (typeof chunk === 'string') return chunk.startsWith('HTTP/1.') && INTERIM.test(chunk);
  if (!(chunk instanceof Uint8Array) || chunk.length < 16 || chunk[0] !== 0x48 /* H */) return false;
  return INTERIM.test(toBuffer(chunk, encoding).toString('latin1'));
}

/**
 * The head as the bytes a net.Socket would put on the wire for it, as a latin1 byte string (what the Ecb sends
 * byte for byte). Node glues `_header` to a first body *string* and writes both in that string's encoding
 * (lib/_http_outgoing.js `_send`), so a non-ASCII header value (`café`) leaves node:http as UTF-8 then, and as
 * latin1 when the head goes alone or before a Buffer. Passing the JS string on unchanged would always send latin1
 * and differ from node:http on the wire (test/http/conformance.test.ts, "non-ASCII response header").
 */
function headBytes(text: string, chunk: unknown, encoding: BufferEncoding | 'buffer'): string {
  if (typeof chunk !== 'string' || encoding === 'latin1' || encoding === 'binary' || encoding === 'ascii') return text;
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return text;
  return Buffer.from(text, encoding === 'buffer' ? 'utf8' : encoding).toString('latin1');
}

function toBuffer(chunk: unknown, encoding: BufferEncoding | 'buffer'): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk, encoding === 'buffer' ? 'utf8' : encoding);
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError('IsapiSocket accepts strings, Buffers and Uint8Arrays');
}
