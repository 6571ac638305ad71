/**
 * MockEcb: a pure-JS ECB for tests, faithful to IIS and strict about ISAPI's rules.
 *
 * - The body is split into lpbData/cbAvailable (read-ahead, default 49152) and the rest, served by ReadClient.
 * - GetServerVariable follows the size protocol and error codes of ISAPI.md §6 (see `gsvProtocol`).
 * - Async completions always arrive on a later tick, never inside the call that started them.
 * - A breach of the rules throws an IsapiError with a stable code AND is kept in `violations`, so a test can
 *   assert "no violations" even when the code under test swallowed the throw:
 *   one outstanding async operation (ERR_ISAPI_ASYNC_PENDING), headers once (ERR_ISAPI_HEADERS_SENT),
 *   nothing after DONE_WITH_SESSION (ERR_ISAPI_ECB_DONE), DONE exactly once (ERR_ISAPI_DONE_TWICE).
 * - It records the response in the shape shared with EmulatedHost and the C host (recorded-response.ts).
 */
import { IsapiError, ErrorCodes, invalidArgument } from '../errors.js';
import {
  ERROR_INVALID_INDEX,
  ERROR_NO_DATA,
  ERROR_NETNAME_DELETED,
  ERROR_NOT_SUPPORTED,
  ERROR_INSUFFICIENT_BUFFER,
  HSE_IO_SEND_HEADERS,
  HSE_REQ_SEND_RESPONSE_HEADER_EX,
  HSE_REQ_DONE_WITH_SESSION,
  HSE_STATUS_SUCCESS,
  HSE_URL_FLAGS_READ,
  HSE_URL_FLAGS_SCRIPT,
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
import { emptyRecord, type RecordedCall, type RecordedResponse } from './recorded-response.js';
import { fitsLogData, RequestModel, truncateLogData, type RequestDescription } from './request-model.js';

export interface MockEcbOptions {
  /** Answer to HSE_REQ_IS_KEEP_CONN. Default: what the request asks for (HTTP/1.1 unless `Connection: close`). */
  readonly keepConn?: boolean;
  /** Make WriteClient fail once this many body bytes have been written (the client went away). */
  readonly failWritesAfterBytes?: number;
  /** Win32 error for those failures; default ERROR_NETNAME_DELETED (64). */
  readonly writeErrorCode?: number;
  /** Files for TRANSMIT_FILE / VECTOR_SEND file elements, by HANDLE value. */
  readonly files?: ReadonlyMap<bigint, Buffer>;
  /** The client certificate for GET_CERT_INFO_EX; omitted means none was presented. */
  readonly clientCertificate?: { readonly encoded: Buffer; readonly flags?: number };
  /** The HANDLE GET_IMPERSONATION_TOKEN returns. Default 0x1234. */
  readonly impersonationToken?: bigint;
  /** How EXEC_URL child requests end. Default: they fail with ERROR_NOT_SUPPORTED. */
  readonly execUrl?: (options: ExecUrlOptions) => ExecUrlStatus;
  /** The physical root MAP_URL_TO_PATH maps onto. Default `C:\inetpub\wwwroot`. */
  readonly physicalRoot?: string;
}

let nextConnId = 1n;

export class MockEcb implements Ecb {
  readonly cbSize = 192;
  readonly version = 0x80000;
  readonly connId: bigint = nextConnId++;
  readonly model: RequestModel;
  /** What the extension did: status, header block, body bytes, keep-conn, log data, DONE status. */
  readonly record: RecordedResponse = emptyRecord();
  /** Every call, in order, for tests that assert the ISAPI conversation itself. */
  readonly calls: RecordedCall[] = [];
  /** Rule breaches, also thrown at the breach. Empty for a well-behaved extension. */
  readonly violations: IsapiError[] = [];

  private readonly options: MockEcbOptions;
  private readonly lpbData: Buffer;
  private pending: string | null = null;
  private pendingRead: { target: Buffer; callback: IoCallback } | null = null;
  private headersSent = false;
  private written = 0;
  private isDone = false;
  private readonly doneWaiters: ((r: RecordedResponse) => void)[] = [];

  /**
   * Build from a description whose body is already known (string, Buffer, sync iterable). For a streamed body use
   * `MockEcb.from()`, which waits for the read-ahead as IIS does before it calls the extension.
   */
  constructor(request: RequestDescription | RequestModel = {}, options: MockEcbOptions = {}, readAhead?: Buffer) {
    this.model = request instanceof RequestModel ? request : new RequestModel(request);
    this.options = options;
    const limit = Math.min(this.model.readAheadSize, this.model.totalBytes);
    this.lpbData = readAhead ?? this.model.body.takeSync(limit);
    this.record.httpStatusCode = 0;
  }

  static async from(request: RequestDescription | RequestModel, options: MockEcbOptions = {}): Promise<MockEcb> {
    const model = request instanceof RequestModel ? request : new RequestModel(request);
    const first = await model.body.fill(Math.min(model.readAheadSize, model.totalBytes));
    return new MockEcb(model, options, first);
  }

  // ── rule enforcement ────────────────────────────────────────────────────────────────────────────────

  private breach(code: (typeof ErrorCodes)[keyof typeof ErrorCodes], message: string): never {
    const error = new IsapiError(code, message);
    this.violations.push(error);
    throw error;
  }

  /** Field reads after DONE are breaches too, but are not worth a line in `calls`. */
  private field<T>(what: string, value: T): T {
    if (this.isDone) this.breach(ErrorCodes.ECB_DONE, `${what} read after DONE_WITH_SESSION`);
    return value;
  }

  private live(what: string): void {
    this.calls.push({ fn: what });
    if (this.isDone) this.breach(ErrorCodes.ECB_DONE, `${what} after DONE_WITH_SESSION: the ECB may already belong to another request`);
  }

  private beginAsync(what: string): void {
    if (this.pending !== null) {
      this.breach(ErrorCodes.ASYNC_PENDING, `${what} while ${this.pending} is outstanding: ISAPI allows one async operation per request`);
    }
    this.pending = what;
  }

  /** Complete on a later tick, as a host thread would; the callback's throw must not be swallowed here. */
  private complete(callback: IoCallback, error: IsapiError | null, bytes: number): void {
    setImmediate(() => {
      this.pending = null;
      callback(error, bytes);
    });
  }

  // ── fields ─────────────────────────────────────────────────────────────────────────────────────────

  get method(): string {
    return this.field('method', this.model.method);
  }
  get queryString(): string {
    return this.field('queryString', this.model.queryString);
  }
  get pathInfo(): string {
    return this.field('pathInfo', this.model.path);
  }
  get pathTranslated(): string {
    return this.field('pathTranslated', this.model.pathTranslated);
  }
  get contentType(): string {
    return this.field('contentType', this.model.contentType);
  }
  get totalBytes(): number {
    return this.field('totalBytes', this.model.totalBytes);
  }
  get availableBytes(): number {
    return this.field('availableBytes', this.lpbData.length);
  }
  readAhead(): Buffer {
    this.live('lpbData');
    return Buffer.from(this.lpbData);
  }
  get httpStatusCode(): number {
    return this.field('httpStatusCode', this.record.httpStatusCode);
  }
  set httpStatusCode(code: number) {
    this.live('dwHttpStatusCode');
    if (!Number.isInteger(code) || code < 0 || code > 0xffffffff) throw invalidArgument(`dwHttpStatusCode must be a DWORD, got ${code}`);
    this.record.httpStatusCode = code;
  }
  get logData(): string {
    return this.field('logData', this.record.logData);
  }
  set logData(text: string) {
    this.live('lpszLogData');
    this.record.logData = fitsLogData(text) ? text : truncateLogData(text).toString('utf8');
  }
  get done(): boolean {
    return this.isDone;
  }

  // ── server variables ───────────────────────────────────────────────────────────────────────────────

  /** The host side of GetServerVariable, byte for byte: what a native caller would see. Exposed for tests. */
  gsvProtocol(name: string, bufferSize: number): { ok: boolean; size: number; error: number; bytes: Buffer | null } {
    const value = this.model.lookup(name);
    if (value === undefined) return { ok: false, size: bufferSize, error: ERROR_INVALID_INDEX, bytes: null };
    if (value === null) return { ok: false, size: bufferSize, error: ERROR_NO_DATA, bytes: null };
    const needed = value.length + RequestModel.terminatorSize(name);
    if (bufferSize < needed) return { ok: false, size: needed, error: ERROR_INSUFFICIENT_BUFFER, bytes: null };
    return { ok: true, size: needed, error: 0, bytes: value };
  }

  serverVariable(name: string): ServerVariableResult {
    this.live(`GetServerVariable:${name}`);
    if (typeof name !== 'string' || name.length === 0) throw invalidArgument('a server variable name must be a non-empty string');
    // Same two-step protocol a native caller uses: probe with a small buffer, retry with the size given back.
    let r = this.gsvProtocol(name, 256);
    if (!r.ok && r.error === ERROR_INSUFFICIENT_BUFFER) r = this.gsvProtocol(name, r.size);
    return r.ok && r.bytes ? { ok: true, value: Buffer.from(r.bytes) } : { ok: false, error: r.error };
  }

  getServerVariable(name: string): Buffer | null {
    const r = this.serverVariable(name);
    return r.ok ? r.value : null;
  }

  getServerVariableString(name: string): string | null {
    // The bytes serverVariable() would return, decoded as decodeVariable() does, without building the Buffers:
    // the protocol's answer does not depend on the probe size, only on whether the variable exists.
    this.live(`GetServerVariable:${name}`);
    if (typeof name !== 'string' || name.length === 0) throw invalidArgument('a server variable name must be a non-empty string');
    return this.model.lookupString(name) ?? null;
  }

  // ── body ───────────────────────────────────────────────────────────────────────────────────────────

  readClient(target: Buffer): number {
    this.live('ReadClient');
    if (this.pending !== null) this.breach(ErrorCodes.ASYNC_PENDING, `ReadClient while ${this.pending} is outstanding`);
    const chunk = this.model.body.takeSync(target.length);
    if (chunk.length === 0 && !this.model.body.finished) {
      throw new IsapiError(ErrorCodes.NOT_SUPPORTED, 'a synchronous ReadClient on a streamed body would block the thread; use readClientAsync');
    }
    chunk.copy(target);
    return chunk.length;
  }

  readClientAsync(target: Buffer, callback: IoCallback): void {
    this.live('SSF:HSE_REQ_ASYNC_READ_CLIENT');
    this.beginAsync('ASYNC_READ_CLIENT');
    this.pendingRead = { target, callback };
    this.model.body.take(target.length).then(
      (chunk) => {
        if (this.pendingRead?.target !== target) return; // completed already by CLOSE_CONNECTION
        this.pendingRead = null;
        chunk.copy(target);
        this.complete(callback, null, chunk.length);
      },
      (cause: unknown) => {
        if (this.pendingRead?.target !== target) return;
        this.pendingRead = null;
        this.complete(callback, new IsapiError(ErrorCodes.CALL_FAILED, 'the request body stream failed', { cause, win32Error: ERROR_NETNAME_DELETED }), 0);
      },
    );
  }

  // ── response ───────────────────────────────────────────────────────────────────────────────────────

  /** Apply the optional write-failure rule; returns how many bytes may go out, or throws nothing (callers map 0/err). */
  private writable(length: number): { accepted: number; failed: boolean } {
    const limit = this.options.failWritesAfterBytes ?? Infinity;
    if (this.written >= limit) return { accepted: 0, failed: true };
    const accepted = Math.min(length, limit - this.written);
    return { accepted, failed: accepted < length };
  }

  private writeError(): IsapiError {
    const code = this.options.writeErrorCode ?? ERROR_NETNAME_DELETED;
    return new IsapiError(ErrorCodes.CALL_FAILED, `WriteClient failed with Win32 error ${code}`, { win32Error: code });
  }

  private append(bytes: Buffer): void {
    this.record.body = this.record.body.length === 0 ? Buffer.from(bytes) : Buffer.concat([this.record.body, bytes]);
    this.written += bytes.length;
  }

  writeClient(data: Buffer, _flags?: number): number {
    this.live('WriteClient');
    if (this.pending !== null) this.breach(ErrorCodes.ASYNC_PENDING, `WriteClient while ${this.pending} is outstanding`);
    const { accepted, failed } = this.writable(data.length);
    this.append(data.subarray(0, accepted));
    if (failed) throw this.writeError();
    return accepted;
  }

  writeClientAsync(data: Buffer, callback: IoCallback, _flags?: number): void {
    this.live('WriteClient:async');
    this.beginAsync('WriteClient');
    // Read the caller's memory only when the I/O "happens", on a later tick: a caller that reuses its Buffer
    // before the completion corrupts the output here exactly as it would on IIS (koffi.md 6d).
    setImmediate(() => {
      const { accepted, failed } = this.writable(data.length);
      this.append(data.subarray(0, accepted));
      this.pending = null;
      callback(failed ? this.writeError() : null, accepted);
    });
  }

  sendResponseHeaders(options: SendHeadersOptions): void {
    this.live(`SSF:${HSE_REQ_SEND_RESPONSE_HEADER_EX}`);
    if (this.headersSent) this.breach(ErrorCodes.HEADERS_SENT, 'SEND_RESPONSE_HEADER_EX called twice: headers may be sent once per request');
    if (typeof options.status !== 'string' || typeof options.headers !== 'string') {
      throw invalidArgument('sendResponseHeaders needs string status and headers');
    }
    this.headersSent = true;
    this.record.status = options.status;
    this.record.headerBlock = options.headers;
    this.record.keepConn = options.keepConn === true;
  }

  doneWithSession(status: number = HSE_STATUS_SUCCESS): void {
    this.calls.push({ fn: `SSF:${HSE_REQ_DONE_WITH_SESSION}`, detail: status });
    if (this.isDone) this.breach(ErrorCodes.DONE_TWICE, 'DONE_WITH_SESSION called twice');
    if (this.pending !== null) this.violations.push(new IsapiError(ErrorCodes.ASYNC_PENDING, `DONE_WITH_SESSION while ${this.pending} is outstanding`));
    this.isDone = true;
    this.record.doneStatus = status;
    this.record.doneCount++;
    for (const w of this.doneWaiters.splice(0)) w(this.record);
  }

  /** Resolves at DONE_WITH_SESSION with the record. */
  whenDone(): Promise<RecordedResponse> {
    return this.isDone ? Promise.resolve(this.record) : new Promise((resolve) => this.doneWaiters.push(resolve));
  }

  // ── ServerSupportFunction helpers ──────────────────────────────────────────────────────────────────

  setIoCompletion(routine: bigint | null, context: bigint): void {
    this.live('SSF:HSE_REQ_IO_COMPLETION');
    this.calls.push({ fn: 'IoCompletion', detail: `${routine ?? 0n}:${context}` });
  }

  isKeepConn(): boolean {
    this.live('SSF:HSE_REQ_IS_KEEP_CONN');
    return this.options.keepConn ?? this.model.clientKeepsAlive();
  }

  closeConnection(): void {
    this.live('SSF:HSE_REQ_CLOSE_CONNECTION');
    this.record.closedConnection = true;
    // ISAPI.md §9: a pending async read completes with ERROR_NETNAME_DELETED after CLOSE_CONNECTION.
    const read = this.pendingRead;
    if (read) {
      this.pendingRead = null;
      this.complete(read.callback, new IsapiError(ErrorCodes.CALL_FAILED, 'connection closed', { win32Error: ERROR_NETNAME_DELETED }), 0);
    }
  }

  setFlushFlag(on: boolean): void {
    this.live('SSF:HSE_REQ_SET_FLUSH_FLAG');
    this.record.flushFlag = on;
  }

  isConnected(): boolean {
    this.live('SSF:HSE_REQ_IS_CONNECTED');
    return !this.record.closedConnection && !this.model.body.aborted;
  }

  mapUrlToPath(url: string): string {
    this.live('SSF:HSE_REQ_MAP_URL_TO_PATH');
    return (this.options.physicalRoot ?? 'C:\\inetpub\\wwwroot') + url.split('?')[0]!.replace(/\//g, '\\');
  }

  mapUrlToPathEx(url: string): UrlMapEx {
    const path = this.mapUrlToPath(url);
    return { path, flags: HSE_URL_FLAGS_READ | HSE_URL_FLAGS_SCRIPT, matchingPathLength: path.length, matchingUrlLength: url.length };
  }

  sendUrlRedirect(url: string): void {
    this.live('SSF:HSE_REQ_SEND_URL_REDIRECT_RESP');
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw invalidArgument(`SEND_URL_REDIRECT_RESP needs an absolute URL, got ${JSON.stringify(url)}`);
    if (this.headersSent) this.breach(ErrorCodes.HEADERS_SENT, 'SEND_URL_REDIRECT_RESP after the headers were sent');
    this.headersSent = true;
    this.record.redirect = url;
    this.record.status = '302 Object Moved';
    this.record.headerBlock = `Location: ${url}\r\nContent-Length: 0\r\n\r\n`;
  }

  private file(handle: bigint): Buffer {
    const f = this.options.files?.get(handle);
    if (!f) throw new IsapiError(ErrorCodes.NOT_SUPPORTED, `MockEcb has no file for handle ${handle}; pass it in options.files`, { win32Error: 6 });
    return f;
  }

  transmitFile(options: TransmitFileOptions, callback: IoCallback): void {
    this.live('SSF:HSE_REQ_TRANSMIT_FILE');
    const file = this.file(options.fileHandle);
    this.beginAsync('TRANSMIT_FILE');
    if ((options.flags ?? 0) & HSE_IO_SEND_HEADERS) {
      this.sendResponseHeaders({ status: options.statusCode ?? '200 OK', headers: options.head?.toString('latin1') ?? '\r\n', keepConn: false });
    }
    const start = options.offset ?? 0;
    const slice = file.subarray(start, options.bytesToWrite ? start + options.bytesToWrite : undefined);
    const parts = (options.flags ?? 0) & HSE_IO_SEND_HEADERS ? [slice] : [options.head ?? Buffer.alloc(0), slice];
    parts.push(options.tail ?? Buffer.alloc(0));
    const all = Buffer.concat(parts);
    this.append(all);
    this.complete(callback, null, all.length);
  }

  vectorSend(options: VectorSendOptions, callback?: IoCallback): void {
    this.live('SSF:HSE_REQ_VECTOR_SEND');
    if (callback) this.beginAsync('VECTOR_SEND');
    if (options.status !== undefined && options.headers !== undefined) {
      this.sendResponseHeaders({ status: options.status, headers: options.headers, keepConn: false });
    }
    let total = 0;
    for (const e of options.elements) {
      const bytes = Buffer.isBuffer(e) ? e : this.file(e.fileHandle).subarray(e.offset ?? 0, e.size ? (e.offset ?? 0) + e.size : undefined);
      this.append(bytes);
      total += bytes.length;
    }
    if (callback) this.complete(callback, null, total);
  }

  reportUnhealthy(reason: string): void {
    this.live('SSF:HSE_REQ_REPORT_UNHEALTHY');
    this.record.unhealthy.push(reason);
  }

  getImpersonationToken(): bigint {
    this.live('SSF:HSE_REQ_GET_IMPERSONATION_TOKEN');
    return this.options.impersonationToken ?? 0x1234n;
  }

  getCertInfo(): CertInfo | null {
    this.live('SSF:HSE_REQ_GET_CERT_INFO_EX');
    const cert = this.options.clientCertificate;
    if (!cert) return null;
    return { encoded: Buffer.from(cert.encoded), encodingType: 1, flags: cert.flags ?? 1 };
  }

  execUrl(options: ExecUrlOptions, callback: (error: IsapiError | null, status: ExecUrlStatus | null) => void): void {
    this.live('SSF:HSE_REQ_EXEC_URL');
    this.beginAsync('EXEC_URL');
    const run = this.options.execUrl;
    setImmediate(() => {
      this.pending = null;
      if (!run) callback(new IsapiError(ErrorCodes.NOT_SUPPORTED, 'MockEcb: no execUrl option given', { win32Error: ERROR_NOT_SUPPORTED }), null);
      else callback(null, run(options));
    });
  }

  appendLogParameter(text: string): void {
    this.live('SSF:HSE_APPEND_LOG_PARAMETER');
    this.record.logParameters.push(text);
  }
}
