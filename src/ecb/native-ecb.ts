/**
 * NativeEcb: the Ecb contract over a raw EXTENSION_CONTROL_BLOCK address, through koffi.
 *
 * The rules it follows come from koffi.md ("Recommended patterns" and the pitfalls):
 * - single-field reads at known offsets; the struct is never decoded whole (2.8 µs, pitfall 9);
 * - each host function pointer is decoded once per thread and cached (decode per call is 30× slower);
 * - async I/O goes through the thread's one completion routine and a context map (io-completion.ts);
 * - async sources are Buffers kept referenced until their completion; never strings or arrays (pitfall 7);
 * - views over ECB memory are never kept: lpbData is copied (pitfall 8);
 * - after DONE_WITH_SESSION every method throws ERR_ISAPI_ECB_DONE and the ECB is never touched (ISAPI.md §9).
 */
import { IsapiError, ErrorCodes, invalidArgument } from '../errors.js';
import { getAbi, type Abi } from './abi.js';
import {
  ERROR_INSUFFICIENT_BUFFER,
  HSE_APPEND_LOG_PARAMETER,
  HSE_IO_ASYNC,
  HSE_IO_SEND_HEADERS,
  HSE_REQ_ASYNC_READ_CLIENT,
  HSE_REQ_CLOSE_CONNECTION,
  HSE_REQ_DONE_WITH_SESSION,
  HSE_REQ_EXEC_URL,
  HSE_REQ_GET_CERT_INFO_EX,
  HSE_REQ_GET_EXEC_URL_STATUS,
  HSE_REQ_GET_IMPERSONATION_TOKEN,
  HSE_REQ_IO_COMPLETION,
  HSE_REQ_IS_CONNECTED,
  HSE_REQ_IS_KEEP_CONN,
  HSE_REQ_MAP_URL_TO_PATH,
  HSE_REQ_MAP_URL_TO_PATH_EX,
  HSE_REQ_REPORT_UNHEALTHY,
  HSE_REQ_SEND_RESPONSE_HEADER_EX,
  HSE_REQ_SEND_URL_REDIRECT_RESP,
  HSE_REQ_SET_FLUSH_FLAG,
  HSE_REQ_TRANSMIT_FILE,
  HSE_REQ_VECTOR_SEND,
  HSE_STATUS_SUCCESS,
  HSE_VECTOR_ELEMENT_TYPE_FILE_HANDLE,
  HSE_VECTOR_ELEMENT_TYPE_MEMORY_BUFFER,
  MAX_PATH,
} from './constants.js';
import type {
  CertInfo,
  Ecb,
  ExecUrlOptions,
  ExecUrlStatus,
  IoCallback,
  SendHeadersOptions,
  ServerVariableResult,
  TransmitFileOptions,
  UrlMapEx,
  VectorSendOptions,
} from './ecb.js';
import { addCompletionTarget, completionRoutine, removeCompletionTarget, trackOutstanding, type CompletionTarget } from './io-completion.js';
import { cStringAt } from './c-string.js';
import { getKoffi } from './koffi.js';
import { lastError } from './last-error.js';
import { truncateLogData } from './request-model.js';
import { INITIAL_VARIABLE_BUFFER, isUnicodeVariable, MAX_VARIABLE_BYTES } from './server-variable.js';

type Koffi = ReturnType<typeof getKoffi>;
type GsvFn = (conn: bigint, name: string, buf: Buffer, size: Uint32Array) => number;
type WcFn = (conn: bigint, buf: Buffer, size: Uint32Array, flags: number) => number;
type RcFn = (conn: bigint, buf: Buffer, size: Uint32Array) => number;
type PointerArg = bigint | Buffer | Uint32Array | Int32Array | BigUint64Array | null;
type SsfFn = (conn: bigint, req: number, buf: PointerArg, size: PointerArg, type: PointerArg) => number;

/** Per-thread state: the ABI, decoded host functions, and scratch space for the synchronous hot paths. */
interface ThreadState {
  readonly koffi: Koffi;
  readonly abi: Abi;
  readonly ecbOff: Abi['offsets']['EXTENSION_CONTROL_BLOCK'];
  readonly ptrSize: number;
  readonly gsv: Map<bigint, GsvFn>;
  readonly wc: Map<bigint, WcFn>;
  readonly rc: Map<bigint, RcFn>;
  readonly ssf: Map<bigint, SsfFn>;
  /** GetServerVariable scratch: reused by every synchronous call on this thread (the host copies into it). */
  scratch: Buffer;
  readonly size: Uint32Array;
  readonly bool: Int32Array;
}

let thread: ThreadState | null = null;

function state(): ThreadState {
  if (thread) return thread;
  const abi = getAbi();
  thread = {
    koffi: getKoffi(),
    abi,
    ecbOff: abi.offsets.EXTENSION_CONTROL_BLOCK,
    ptrSize: abi.pointerSize,
    gsv: new Map(),
    wc: new Map(),
    rc: new Map(),
    ssf: new Map(),
    scratch: Buffer.alloc(INITIAL_VARIABLE_BUFFER),
    size: new Uint32Array(1),
    bool: new Int32Array(1),
  };
  return thread;
}

function decodeFn<F>(cache: Map<bigint, F>, pointer: bigint, proto: unknown): F {
  let fn = cache.get(pointer);
  if (fn === undefined) {
    if (pointer === 0n) throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, 'the ECB holds a NULL host function pointer');
    fn = state().koffi.decode(pointer, proto as never) as F;
    cache.set(pointer, fn);
  }
  return fn;
}

/** NUL-terminated bytes for a `char *` argument: a Buffer, never a JS string when the host may keep it. */
function cString(text: string, encoding: BufferEncoding = 'latin1'): Buffer {
  const b = Buffer.allocUnsafe(Buffer.byteLength(text, encoding) + 1);
  b.write(text, 0, encoding);
  b[b.length - 1] = 0;
  return b;
}

function writePointer(buf: Buffer, offset: number, value: bigint, ptrSize: number): void {
  if (ptrSize === 8) buf.writeBigUInt64LE(value, offset);
  else buf.writeUInt32LE(Number(value), offset);
}

function readPointer(buf: Buffer, offset: number, ptrSize: number): bigint {
  return ptrSize === 8 ? buf.readBigUInt64LE(offset) : BigInt(buf.readUInt32LE(offset));
}

interface PendingOp {
  readonly what: string;
  /** Everything the host may still read or write: kept referenced until the completion (koffi.md 6d). */
  readonly keep: readonly unknown[];
  readonly callback: IoCallback;
}

export class NativeEcb implements Ecb, CompletionTarget {
  /** The EXTENSION_CONTROL_BLOCK address this object reads. */
  readonly address: bigint;
  readonly connId: bigint;
  private readonly t: ThreadState;
  private readonly gsvFn: GsvFn;
  private readonly wcFn: WcFn;
  private readonly rcFn: RcFn;
  private readonly ssfFn: SsfFn;
  private isDone = false;
  private ctx = 0;
  private pending: PendingOp | null = null;
  private headersSent = false;
  /** The ECB's string fields never change during a request: each is read once, on first use. */
  private readonly strings: (string | undefined)[] = [];
  /** cbTotalBytes/cbAvailable addresses, computed once: BigInt arithmetic per read costs more than the read. */
  private readonly totalAt: bigint;
  private readonly availableAt: bigint;

  constructor(address: bigint) {
    if (typeof address !== 'bigint' || address === 0n) throw invalidArgument('NativeEcb needs a non-NULL ECB address (a BigInt)');
    const t = state();
    this.t = t;
    this.address = address;
    const k = t.koffi;
    const off = t.ecbOff;
    const protos = t.abi.protos;
    this.connId = this.ptrAt(off.ConnID);
    this.gsvFn = decodeFn(t.gsv, this.ptrAt(off.GetServerVariable), protos.GetServerVariable);
    this.wcFn = decodeFn(t.wc, this.ptrAt(off.WriteClient), protos.WriteClient);
    this.rcFn = decodeFn(t.rc, this.ptrAt(off.ReadClient), protos.ReadClient);
    this.ssfFn = decodeFn(t.ssf, this.ptrAt(off.ServerSupportFunction), protos.ServerSupportFunction);
    this.totalAt = address + BigInt(off.cbTotalBytes);
    this.availableAt = address + BigInt(off.cbAvailable);
    void k;
  }

  // ── raw field access ───────────────────────────────────────────────────────────────────────────────

  private live(): void {
    if (this.isDone) throw new IsapiError(ErrorCodes.ECB_DONE, 'the ECB was used after DONE_WITH_SESSION; it may already belong to another request');
  }

  private ptrAt(offset: number): bigint {
    return this.t.koffi.decode(this.address, offset, 'void *') as unknown as bigint ?? 0n;
  }

  private u32At(offset: number): number {
    this.live();
    return this.t.koffi.decode.uint32(this.address + BigInt(offset)) as number;
  }

  /** An ANSI `char *` field, read once and kept, as latin1 so that every byte survives. */
  private ansiAt(offset: number): string {
    this.live();
    const cached = this.strings[offset];
    if (cached !== undefined) return cached;
    const p = this.ptrAt(offset);
    const text = p === 0n ? '' : cStringAt(this.t.koffi, p);
    this.strings[offset] = text;
    return text;
  }

  private fail(what: string): IsapiError {
    const code = lastError().get();
    return new IsapiError(ErrorCodes.CALL_FAILED, `${what} failed with Win32 error ${code}`, { win32Error: code });
  }

  private ssf(request: number, buf: PointerArg, size: PointerArg, type: PointerArg): boolean {
    this.live();
    return this.ssfFn(this.connId, request, buf, size, type) !== 0;
  }

  // ── fields ─────────────────────────────────────────────────────────────────────────────────────────

  get cbSize(): number {
    return this.u32At(this.t.ecbOff.cbSize);
  }
  get version(): number {
    return this.u32At(this.t.ecbOff.dwVersion);
  }
  get method(): string {
    return this.ansiAt(this.t.ecbOff.lpszMethod);
  }
  get queryString(): string {
    return this.ansiAt(this.t.ecbOff.lpszQueryString);
  }
  get pathInfo(): string {
    return this.ansiAt(this.t.ecbOff.lpszPathInfo);
  }
  get pathTranslated(): string {
    return this.ansiAt(this.t.ecbOff.lpszPathTranslated);
  }
  get contentType(): string {
    return this.ansiAt(this.t.ecbOff.lpszContentType);
  }
  get totalBytes(): number {
    this.live();
    return this.t.koffi.decode.uint32(this.totalAt as never) as number;
  }
  get availableBytes(): number {
    this.live();
    return this.t.koffi.decode.uint32(this.availableAt as never) as number;
  }
  readAhead(): Buffer {
    const n = this.availableBytes;
    if (n === 0) return Buffer.alloc(0);
    const p = this.ptrAt(this.t.ecbOff.lpbData);
    if (p === 0n) return Buffer.alloc(0);
    // Copy: a view over lpbData dangles once the session ends (koffi.md 6e). Buffer.from(ArrayBuffer) would be a
    // view; Buffer.from(Uint8Array) copies.
    return Buffer.from(new Uint8Array(this.t.koffi.view(p as never, n) as ArrayBuffer));
  }
  get httpStatusCode(): number {
    return this.u32At(this.t.ecbOff.dwHttpStatusCode);
  }
  set httpStatusCode(code: number) {
    this.live();
    if (!Number.isInteger(code) || code < 0 || code > 0xffffffff) throw invalidArgument(`dwHttpStatusCode must be a DWORD, got ${code}`);
    this.t.koffi.encode(this.address as never, this.t.ecbOff.dwHttpStatusCode, 'uint32_t', code);
  }
  get logData(): string {
    this.live();
    // An 80-byte array inside the ECB: viewed whole (no koffi.decode with a length, see cStringAt), up to its NUL.
    const bytes = Buffer.from(this.t.koffi.view((this.address + BigInt(this.t.ecbOff.lpszLogData)) as never, 80) as ArrayBuffer);
    const nul = bytes.indexOf(0);
    return bytes.toString('utf8', 0, Math.min(nul < 0 ? 80 : nul, 79));
  }
  set logData(text: string) {
    this.live();
    const bytes = truncateLogData(String(text));
    // lpszLogData is an 80-byte array inside the ECB, not a pointer (ISAPI.md §13 item 13): write into it.
    const view = Buffer.from(this.t.koffi.view((this.address + BigInt(this.t.ecbOff.lpszLogData)) as never, bytes.length + 1) as ArrayBuffer);
    bytes.copy(view);
    view[bytes.length] = 0;
  }
  get done(): boolean {
    return this.isDone;
  }

  // ── server variables ───────────────────────────────────────────────────────────────────────────────

  /**
   * GetServerVariable into the thread's scratch buffer, with at most one retry at the size the host asks for
   * (ISAPI.md §6). Returns the value's length in `scratch`, or -1 with the Win32 code in `gsvError`.
   * Kept allocation-free on the common path: bench/ecb.ts holds it to 1.25× a bare koffi call.
   */
  private gsvInto(name: string, unicode: boolean): number {
    this.live();
    const t = this.t;
    const size = t.size;
    size[0] = t.scratch.length;
    if (this.gsvFn(this.connId, name, t.scratch, size) !== 0) return Math.max(0, (size[0] as number) - (unicode ? 2 : 1));
    const needed = size[0] as number;
    const error = lastError().get();
    // The size check alone identifies "too small" even when the host forgot SetLastError (koffi.md §3a).
    if (error !== ERROR_INSUFFICIENT_BUFFER && needed <= t.scratch.length) {
      this.gsvError = error;
      return -1;
    }
    if (needed > MAX_VARIABLE_BYTES) {
      throw new IsapiError(ErrorCodes.VARIABLE_TOO_LARGE, `server variable ${name} needs ${needed} bytes, above the ${MAX_VARIABLE_BYTES}-byte cap`);
    }
    // Grow the shared scratch: a variable this large (ALL_RAW with big cookies) tends to recur on later requests.
    t.scratch = Buffer.alloc(Math.max(needed, t.scratch.length * 2));
    size[0] = t.scratch.length;
    if (this.gsvFn(this.connId, name, t.scratch, size) !== 0) return Math.max(0, (size[0] as number) - (unicode ? 2 : 1));
    this.gsvError = lastError().get();
    return -1;
  }

  private gsvError = 0;

  private static checkName(name: unknown): asserts name is string {
    if (typeof name !== 'string' || name.length === 0) throw invalidArgument('a server variable name must be a non-empty string');
  }

  serverVariable(name: string): ServerVariableResult {
    NativeEcb.checkName(name);
    const n = this.gsvInto(name, isUnicodeVariable(name));
    if (n < 0) return { ok: false, error: this.gsvError };
    const value = Buffer.allocUnsafe(n);
    this.t.scratch.copy(value, 0, 0, n);
    return { ok: true, value };
  }

  getServerVariable(name: string): Buffer | null {
    const r = this.serverVariable(name);
    return r.ok ? r.value : null;
  }

  getServerVariableString(name: string): string | null {
    NativeEcb.checkName(name);
    const unicode = isUnicodeVariable(name);
    const n = this.gsvInto(name, unicode);
    // Decode straight from the scratch buffer: no intermediate copy on the hot path.
    return n < 0 ? null : this.t.scratch.toString(unicode ? 'utf16le' : 'latin1', 0, n);
  }

  // ── async plumbing ─────────────────────────────────────────────────────────────────────────────────

  private ensureCompletion(): void {
    if (this.ctx !== 0) return;
    this.ctx = addCompletionTarget(this);
    // The routine and its context travel in lpvBuffer and lpdwDataType (ISAPI.md §9).
    if (!this.ssf(HSE_REQ_IO_COMPLETION, completionRoutine(), null, BigInt(this.ctx))) {
      removeCompletionTarget(this.ctx);
      this.ctx = 0;
      throw this.fail('HSE_REQ_IO_COMPLETION');
    }
  }

  private begin(what: string, keep: readonly unknown[], callback: IoCallback): void {
    this.live();
    if (typeof callback !== 'function') throw invalidArgument(`${what} needs a completion callback`);
    if (this.pending) {
      throw new IsapiError(ErrorCodes.ASYNC_PENDING, `${what} while ${this.pending.what} is outstanding: ISAPI allows one async operation per request`);
    }
    this.ensureCompletion();
    this.pending = { what, keep, callback };
    trackOutstanding(1);
  }

  /** The call that should have started the op returned FALSE: no completion will come, so report it ourselves. */
  private abandon(what: string): void {
    const op = this.pending;
    this.pending = null;
    trackOutstanding(-1);
    const error = this.fail(what);
    if (op) setImmediate(() => op.callback(error, 0));
  }

  /**
   * Take over an ECB whose async operation was started on another thread that has since died: point the host's
   * completion at *this* thread's routine ("only the latest registration counts", ISAPI.md §9), and call back when
   * the outstanding operation completes. The dead thread's routine must never be called (koffi.md pitfall 7).
   */
  adoptOutstandingIo(callback: IoCallback): void {
    this.begin('adopted I/O', [], callback);
  }

  /** Called by the thread's completion routine. */
  onIoComplete(cbIO: number, dwError: number): void {
    const op = this.pending;
    if (!op) return;
    this.pending = null;
    trackOutstanding(-1);
    const error = dwError === 0 ? null : new IsapiError(ErrorCodes.CALL_FAILED, `${op.what} completed with Win32 error ${dwError}`, { win32Error: dwError });
    op.callback(error, cbIO);
  }

  // ── body ───────────────────────────────────────────────────────────────────────────────────────────

  readClient(target: Buffer): number {
    this.live();
    if (this.pending) throw new IsapiError(ErrorCodes.ASYNC_PENDING, `ReadClient while ${this.pending.what} is outstanding`);
    const size = this.t.size;
    size[0] = target.length;
    if (this.rcFn(this.connId, target, size) === 0) throw this.fail('ReadClient');
    return size[0] as number;
  }

  readClientAsync(target: Buffer, callback: IoCallback): void {
    const size = new Uint32Array([target.length]);
    const flags = new Uint32Array([HSE_IO_ASYNC]);
    this.begin('ASYNC_READ_CLIENT', [target, size, flags], callback);
    if (!this.ssfFn(this.connId, HSE_REQ_ASYNC_READ_CLIENT, target, size, flags)) this.abandon('HSE_REQ_ASYNC_READ_CLIENT');
  }

  // ── response ───────────────────────────────────────────────────────────────────────────────────────

  writeClient(data: Buffer, flags = 0): number {
    this.live();
    if (this.pending) throw new IsapiError(ErrorCodes.ASYNC_PENDING, `WriteClient while ${this.pending.what} is outstanding`);
    const size = this.t.size;
    size[0] = data.length;
    if (this.wcFn(this.connId, data, size, flags & ~HSE_IO_ASYNC) === 0) throw this.fail('WriteClient');
    return size[0] as number;
  }

  writeClientAsync(data: Buffer, callback: IoCallback, flags = 0): void {
    if (!Buffer.isBuffer(data)) throw invalidArgument('async WriteClient needs a Buffer: strings and arrays are copied to a reused heap (koffi.md pitfall 7)');
    const size = new Uint32Array([data.length]);
    this.begin('WriteClient', [data, size], callback);
    if (this.wcFn(this.connId, data, size, flags | HSE_IO_ASYNC) === 0) this.abandon('WriteClient');
  }

  sendResponseHeaders(options: SendHeadersOptions): void {
    this.live();
    if (this.headersSent) throw new IsapiError(ErrorCodes.HEADERS_SENT, 'SEND_RESPONSE_HEADER_EX called twice: headers may be sent once per request');
    const { ptrSize, abi, koffi } = this.t;
    const off = abi.offsets.HSE_SEND_HEADER_EX_INFO;
    const status = cString(options.status);
    const headers = cString(options.headers);
    const info = Buffer.alloc(abi.sizes.HSE_SEND_HEADER_EX_INFO);
    writePointer(info, off.pszStatus, koffi.address(status) as unknown as bigint, ptrSize);
    writePointer(info, off.pszHeader, koffi.address(headers) as unknown as bigint, ptrSize);
    info.writeUInt32LE(status.length - 1, off.cchStatus);
    info.writeUInt32LE(headers.length - 1, off.cchHeader);
    // fKeepConn is always an explicit 0 or 1 (ISAPI.md §13 item 7).
    info.writeInt32LE(options.keepConn ? 1 : 0, off.fKeepConn);
    if (!this.ssf(HSE_REQ_SEND_RESPONSE_HEADER_EX, info, null, null)) throw this.fail('HSE_REQ_SEND_RESPONSE_HEADER_EX');
    this.headersSent = true;
  }

  doneWithSession(status: number = HSE_STATUS_SUCCESS): void {
    if (this.isDone) throw new IsapiError(ErrorCodes.DONE_TWICE, 'DONE_WITH_SESSION called twice');
    const cell = new Uint32Array([status]);
    // Mark done first: whatever the host answers, this ECB must never be touched again.
    this.isDone = true;
    if (this.ctx !== 0) removeCompletionTarget(this.ctx);
    if (this.pending) {
      // Should not happen (the layers above wait for completions); do not leak the keep-alive count.
      this.pending = null;
      trackOutstanding(-1);
    }
    this.ssfFn(this.connId, HSE_REQ_DONE_WITH_SESSION, cell, null, null);
  }

  // ── ServerSupportFunction helpers ──────────────────────────────────────────────────────────────────

  setIoCompletion(routine: bigint | null, context: bigint): void {
    if (!this.ssf(HSE_REQ_IO_COMPLETION, routine ?? 0n, null, context)) throw this.fail('HSE_REQ_IO_COMPLETION');
  }

  private boolOut(request: number, what: string): boolean {
    const out = new Int32Array(1);
    if (!this.ssf(request, out, null, null)) throw this.fail(what);
    return out[0] !== 0;
  }

  isKeepConn(): boolean {
    return this.boolOut(HSE_REQ_IS_KEEP_CONN, 'HSE_REQ_IS_KEEP_CONN');
  }

  closeConnection(): void {
    if (!this.ssf(HSE_REQ_CLOSE_CONNECTION, null, null, null)) throw this.fail('HSE_REQ_CLOSE_CONNECTION');
  }

  setFlushFlag(on: boolean): void {
    // The BOOL travels by value in the pointer slot (ISAPI.md §10).
    if (!this.ssf(HSE_REQ_SET_FLUSH_FLAG, on ? 1n : 0n, null, null)) throw this.fail('HSE_REQ_SET_FLUSH_FLAG');
  }

  isConnected(): boolean {
    return this.boolOut(HSE_REQ_IS_CONNECTED, 'HSE_REQ_IS_CONNECTED');
  }

  mapUrlToPath(url: string): string {
    // In/out in one buffer, with the usual size protocol (ISAPI.md §10).
    let buf = Buffer.alloc(Math.max(MAX_PATH, Buffer.byteLength(url, 'latin1') + 1));
    for (let attempt = 0; attempt < 2; attempt++) {
      buf.fill(0);
      buf.write(url, 0, 'latin1');
      const size = new Uint32Array([buf.length]);
      if (this.ssf(HSE_REQ_MAP_URL_TO_PATH, buf, size, null)) {
        const end = buf.indexOf(0);
        return buf.toString('latin1', 0, end === -1 ? buf.length : end);
      }
      if ((size[0] as number) <= buf.length) break;
      buf = Buffer.alloc(size[0] as number);
    }
    throw this.fail('HSE_REQ_MAP_URL_TO_PATH');
  }

  mapUrlToPathEx(url: string): UrlMapEx {
    const { abi } = this.t;
    const off = abi.offsets.HSE_URL_MAPEX_INFO;
    const urlBuf = cString(url);
    const size = new Uint32Array([urlBuf.length]);
    const info = Buffer.alloc(abi.sizes.HSE_URL_MAPEX_INFO);
    if (!this.ssf(HSE_REQ_MAP_URL_TO_PATH_EX, urlBuf, size, info as never)) throw this.fail('HSE_REQ_MAP_URL_TO_PATH_EX');
    const end = info.indexOf(0, off.lpszPath);
    return {
      path: info.toString('latin1', off.lpszPath, end === -1 || end > off.lpszPath + MAX_PATH ? off.lpszPath + MAX_PATH : end),
      flags: info.readUInt32LE(off.dwFlags),
      matchingPathLength: info.readUInt32LE(off.cchMatchingPath),
      matchingUrlLength: info.readUInt32LE(off.cchMatchingURL),
    };
  }

  sendUrlRedirect(url: string): void {
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw invalidArgument(`SEND_URL_REDIRECT_RESP needs an absolute URL, got ${JSON.stringify(url)}`);
    const buf = cString(url);
    if (!this.ssf(HSE_REQ_SEND_URL_REDIRECT_RESP, buf, new Uint32Array([buf.length]), null)) throw this.fail('HSE_REQ_SEND_URL_REDIRECT_RESP');
    this.headersSent = true;
  }

  transmitFile(options: TransmitFileOptions, callback: IoCallback): void {
    const { abi, ptrSize, koffi } = this.t;
    const off = abi.offsets.HSE_TF_INFO;
    const info = Buffer.alloc(abi.sizes.HSE_TF_INFO);
    const status = options.statusCode === undefined ? null : cString(options.statusCode);
    // pfnHseIO NULL: the completion goes to the routine registered with HSE_REQ_IO_COMPLETION (ISAPI.md §7.4).
    writePointer(info, off.hFile, options.fileHandle, ptrSize);
    if (status) writePointer(info, off.pszStatusCode, koffi.address(status) as unknown as bigint, ptrSize);
    info.writeUInt32LE(options.bytesToWrite ?? 0, off.BytesToWrite);
    info.writeUInt32LE(options.offset ?? 0, off.Offset);
    if (options.head) {
      writePointer(info, off.pHead, koffi.address(options.head) as unknown as bigint, ptrSize);
      info.writeUInt32LE(options.head.length, off.HeadLength);
    }
    if (options.tail) {
      writePointer(info, off.pTail, koffi.address(options.tail) as unknown as bigint, ptrSize);
      info.writeUInt32LE(options.tail.length, off.TailLength);
    }
    info.writeUInt32LE((options.flags ?? 0) | HSE_IO_ASYNC, off.dwFlags);
    this.begin('TRANSMIT_FILE', [info, status, options.head, options.tail], callback);
    if (!this.ssfFn(this.connId, HSE_REQ_TRANSMIT_FILE, info, null, null)) this.abandon('HSE_REQ_TRANSMIT_FILE');
    else if ((options.flags ?? 0) & HSE_IO_SEND_HEADERS) this.headersSent = true;
  }

  vectorSend(options: VectorSendOptions, callback?: IoCallback): void {
    const { abi, ptrSize, koffi } = this.t;
    const vo = abi.offsets.HSE_RESPONSE_VECTOR;
    const eo = abi.offsets.HSE_VECTOR_ELEMENT;
    const stride = abi.sizes.HSE_VECTOR_ELEMENT;
    const elements = Buffer.alloc(Math.max(1, options.elements.length) * stride);
    options.elements.forEach((e, i) => {
      const base = i * stride;
      if (Buffer.isBuffer(e)) {
        elements.writeUInt32LE(HSE_VECTOR_ELEMENT_TYPE_MEMORY_BUFFER, base + eo.ElementType);
        writePointer(elements, base + eo.pvContext, koffi.address(e) as unknown as bigint, ptrSize);
        elements.writeBigUInt64LE(0n, base + eo.cbOffset);
        elements.writeBigUInt64LE(BigInt(e.length), base + eo.cbSize);
      } else {
        elements.writeUInt32LE(HSE_VECTOR_ELEMENT_TYPE_FILE_HANDLE, base + eo.ElementType);
        writePointer(elements, base + eo.pvContext, e.fileHandle, ptrSize);
        elements.writeBigUInt64LE(BigInt(e.offset ?? 0), base + eo.cbOffset);
        elements.writeBigUInt64LE(BigInt(e.size ?? 0), base + eo.cbSize);
      }
    });
    const withHeaders = options.status !== undefined && options.headers !== undefined;
    const status = withHeaders ? cString(options.status as string) : null;
    const headers = withHeaders ? cString(options.headers as string) : null;
    const vector = Buffer.alloc(abi.sizes.HSE_RESPONSE_VECTOR);
    const flags = (options.flags ?? 0) | (withHeaders ? HSE_IO_SEND_HEADERS : 0) | (callback ? HSE_IO_ASYNC : 0);
    vector.writeUInt32LE(flags, vo.dwFlags);
    if (status && headers) {
      writePointer(vector, vo.pszStatus, koffi.address(status) as unknown as bigint, ptrSize);
      writePointer(vector, vo.pszHeaders, koffi.address(headers) as unknown as bigint, ptrSize);
    }
    vector.writeUInt32LE(options.elements.length, vo.nElementCount);
    writePointer(vector, vo.lpElementArray, koffi.address(elements) as unknown as bigint, ptrSize);
    if (callback) {
      this.begin('VECTOR_SEND', [vector, elements, status, headers, options.elements], callback);
      if (!this.ssfFn(this.connId, HSE_REQ_VECTOR_SEND, vector, null, null)) return this.abandon('HSE_REQ_VECTOR_SEND');
    } else if (!this.ssf(HSE_REQ_VECTOR_SEND, vector, null, null)) {
      throw this.fail('HSE_REQ_VECTOR_SEND');
    }
    if (withHeaders) this.headersSent = true;
  }

  reportUnhealthy(reason: string): void {
    if (!this.ssf(HSE_REQ_REPORT_UNHEALTHY, cString(reason), null, null)) throw this.fail('HSE_REQ_REPORT_UNHEALTHY');
  }

  getImpersonationToken(): bigint {
    const out = Buffer.alloc(this.t.ptrSize);
    if (!this.ssf(HSE_REQ_GET_IMPERSONATION_TOKEN, out, null, null)) throw this.fail('HSE_REQ_GET_IMPERSONATION_TOKEN');
    return readPointer(out, 0, this.t.ptrSize);
  }

  getCertInfo(): CertInfo | null {
    const { abi, ptrSize, koffi } = this.t;
    const off = abi.offsets.CERT_CONTEXT_EX;
    const cc = abi.offsets.CERT_CONTEXT;
    let capacity = 4096;
    for (let attempt = 0; attempt < 2; attempt++) {
      const cert = Buffer.alloc(capacity);
      const info = Buffer.alloc(abi.sizes.CERT_CONTEXT_EX);
      writePointer(info, off.CertContext + cc.pbCertEncoded, koffi.address(cert) as unknown as bigint, ptrSize);
      info.writeUInt32LE(capacity, off.cbAllocated);
      if (this.ssf(HSE_REQ_GET_CERT_INFO_EX, info, null, null)) {
        const flags = info.readUInt32LE(off.dwCertificateFlags);
        const length = info.readUInt32LE(off.CertContext + cc.cbCertEncoded);
        if ((flags & 1) === 0 || length === 0) return null;
        return { encoded: Buffer.from(cert.subarray(0, length)), encodingType: info.readUInt32LE(off.CertContext + cc.dwCertEncodingType), flags };
      }
      const needed = info.readUInt32LE(off.CertContext + cc.cbCertEncoded);
      if (lastError().get() !== ERROR_INSUFFICIENT_BUFFER || needed <= capacity) break;
      capacity = needed;
    }
    throw this.fail('HSE_REQ_GET_CERT_INFO_EX');
  }

  execUrl(options: ExecUrlOptions, callback: (error: IsapiError | null, status: ExecUrlStatus | null) => void): void {
    const { abi, ptrSize, koffi } = this.t;
    const off = abi.offsets.HSE_EXEC_URL_INFO;
    const info = Buffer.alloc(abi.sizes.HSE_EXEC_URL_INFO);
    const url = options.url === undefined ? null : cString(options.url);
    const method = options.method === undefined ? null : cString(options.method);
    const headers = options.childHeaders === undefined ? null : cString(options.childHeaders);
    if (url) writePointer(info, off.pszUrl, koffi.address(url) as unknown as bigint, ptrSize);
    if (method) writePointer(info, off.pszMethod, koffi.address(method) as unknown as bigint, ptrSize);
    if (headers) writePointer(info, off.pszChildHeaders, koffi.address(headers) as unknown as bigint, ptrSize);
    info.writeUInt32LE(options.flags ?? 0, off.dwExecUrlFlags);
    this.begin('EXEC_URL', [info, url, method, headers], (error) => {
      if (error) return callback(error, null);
      try {
        const so = abi.offsets.HSE_EXEC_URL_STATUS;
        const out = Buffer.alloc(abi.sizes.HSE_EXEC_URL_STATUS);
        if (!this.ssf(HSE_REQ_GET_EXEC_URL_STATUS, out, null, null)) return callback(this.fail('HSE_REQ_GET_EXEC_URL_STATUS'), null);
        callback(null, { statusCode: out.readUInt16LE(so.uHttpStatusCode), subStatus: out.readUInt16LE(so.uHttpSubStatus), win32Error: out.readUInt32LE(so.dwWin32Error) });
      } catch (e) {
        callback(e as IsapiError, null);
      }
    });
    if (!this.ssfFn(this.connId, HSE_REQ_EXEC_URL, info, null, null)) this.abandon('HSE_REQ_EXEC_URL');
  }

  appendLogParameter(text: string): void {
    const buf = cString(text);
    if (!this.ssf(HSE_APPEND_LOG_PARAMETER, buf, new Uint32Array([buf.length - 1]), null)) throw this.fail('HSE_APPEND_LOG_PARAMETER');
  }
}
