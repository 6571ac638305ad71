/**
 * The `Ecb` interface: the one contract between the ISAPI ABI (src/ecb) and everything above it.
 * `NativeEcb` implements it over a raw EXTENSION_CONTROL_BLOCK address with koffi, `MockEcb` in pure JS.
 * Nothing above src/ecb ever sees a pointer except `connId`, which is opaque.
 *
 * Reference: shared/reference/ISAPI.md §5 (fields), §6 (GetServerVariable), §7 (sending), §8 (reading),
 * §9 (async and session lifecycle), §10 (ServerSupportFunction catalogue).
 */
import type { IsapiError } from '../errors.js';

/** Outcome of GetServerVariable, before any decoding. */
export type ServerVariableResult =
  | { readonly ok: true; readonly value: Buffer }
  /** `error` is the Win32 code: 1413 unknown name, 232 no data, 87 bad parameter (ISAPI.md §6). */
  | { readonly ok: false; readonly error: number };

/** Completion of an async operation: `error` is null on success, `bytes` is cbIO. */
export type IoCallback = (error: IsapiError | null, bytes: number) => void;

export interface SendHeadersOptions {
  /** Status text without the protocol, e.g. `"200 OK"` (pszStatus). */
  readonly status: string;
  /** Header lines, each ending in CRLF, the whole block ending in CRLF CRLF (pszHeader, ISAPI.md §7.1). */
  readonly headers: string;
  /** fKeepConn: always passed to the host as an explicit 0 or 1 (ISAPI.md §13 item 7). */
  readonly keepConn: boolean;
}

export interface UrlMapEx {
  readonly path: string;
  readonly flags: number;
  readonly matchingPathLength: number;
  readonly matchingUrlLength: number;
}

export interface CertInfo {
  /** The DER-encoded client certificate (CERT_CONTEXT.pbCertEncoded). */
  readonly encoded: Buffer;
  readonly encodingType: number;
  /** dwCertificateFlags: bit 0 = a certificate is present, bit 1 = its issuer is not trusted. */
  readonly flags: number;
}

/** One HSE_VECTOR_ELEMENT. Memory elements are Buffers; file elements carry a Win32 HANDLE. */
export type VectorElement = Buffer | { readonly fileHandle: bigint; readonly offset?: number; readonly size?: number };

export interface VectorSendOptions {
  /** With both status and headers, HSE_IO_SEND_HEADERS is set (ISAPI.md §7.4). */
  readonly status?: string;
  readonly headers?: string;
  readonly elements: readonly VectorElement[];
  /** Extra HSE_IO_* flags: FINAL_SEND, DISCONNECT_AFTER_SEND, ... */
  readonly flags?: number;
}

export interface TransmitFileOptions {
  readonly fileHandle: bigint;
  /** 0 sends the whole file. */
  readonly bytesToWrite?: number;
  readonly offset?: number;
  readonly head?: Buffer;
  readonly tail?: Buffer;
  /** With HSE_IO_SEND_HEADERS, IIS builds the head from this status and `head` holds extra headers. */
  readonly statusCode?: string;
  readonly flags?: number;
}

export interface ExecUrlOptions {
  /** null or omitted: the current URL. */
  readonly url?: string;
  readonly method?: string;
  /** A complete replacement header block, or omitted to pass the parent's headers. */
  readonly childHeaders?: string;
  readonly flags?: number;
}

export interface ExecUrlStatus {
  readonly statusCode: number;
  readonly subStatus: number;
  readonly win32Error: number;
}

/**
 * One request's EXTENSION_CONTROL_BLOCK. Every method throws an `IsapiError` with code
 * `ERR_ISAPI_ECB_DONE` once `doneWithSession()` has been called: the host may reuse the ECB (ISAPI.md §9).
 */
export interface Ecb {
  // ── fields (ISAPI.md §5) ────────────────────────────────────────────────────────────────────────────
  /** cbSize: 192 on x64, 144 on ia32. */
  readonly cbSize: number;
  /** dwVersion: HIWORD major, LOWORD minor. */
  readonly version: number;
  /** ConnID, opaque. */
  readonly connId: bigint;
  readonly method: string;
  readonly queryString: string;
  readonly pathInfo: string;
  readonly pathTranslated: string;
  readonly contentType: string;
  /** cbTotalBytes; 0xFFFFFFFF (UNKNOWN_LENGTH) means unknown or ≥ 4 GiB: read until 0 bytes. */
  readonly totalBytes: number;
  /** cbAvailable: how many body bytes the host already read into lpbData. */
  readonly availableBytes: number;
  /** A copy of lpbData[0..cbAvailable]: the read-ahead part of the body. Copied because views dangle (koffi.md 6e). */
  readAhead(): Buffer;
  /** dwHttpStatusCode: read and write. */
  httpStatusCode: number;
  /** lpszLogData, an 80-byte in-struct buffer: writes are truncated to 79 bytes on a UTF-8 boundary. */
  logData: string;

  // ── server variables (ISAPI.md §6) ──────────────────────────────────────────────────────────────────
  /** Raw GetServerVariable with the size-retry protocol: bytes without the terminating NUL, or the Win32 error. */
  serverVariable(name: string): ServerVariableResult;
  /** The variable's bytes, or null when it is unknown (1413) or has no data (232). */
  getServerVariable(name: string): Buffer | null;
  /** Decoded: `UNICODE_*` names as UTF-16LE, all others as latin1 (byte-preserving, like Node's header parser). */
  getServerVariableString(name: string): string | null;

  // ── body ───────────────────────────────────────────────────────────────────────────────────────────
  /** Synchronous ReadClient into `target`; returns the byte count, 0 when the client has gone (ISAPI.md §8). */
  readClient(target: Buffer): number;
  /** HSE_REQ_ASYNC_READ_CLIENT into `target`; `bytes` 0 means the client has gone. `target` stays referenced until then. */
  readClientAsync(target: Buffer, callback: IoCallback): void;

  // ── response ───────────────────────────────────────────────────────────────────────────────────────
  /** Synchronous WriteClient; returns the count the host reports. */
  writeClient(data: Buffer, flags?: number): number;
  /** Async WriteClient (HSE_IO_ASYNC): `data` stays referenced until the completion (koffi.md pitfall 7). */
  writeClientAsync(data: Buffer, callback: IoCallback, flags?: number): void;
  /** HSE_REQ_SEND_RESPONSE_HEADER_EX. Throws ERR_ISAPI_HEADERS_SENT on a second call. */
  sendResponseHeaders(options: SendHeadersOptions): void;
  /** HSE_REQ_DONE_WITH_SESSION with an HSE_STATUS_* value. After it, the ECB is never touched again. */
  doneWithSession(status?: number): void;
  /** True once doneWithSession() has been called. */
  readonly done: boolean;

  // ── ServerSupportFunction helpers (ISAPI.md §10) ─────────────────────────────────────────────────────
  /** HSE_REQ_IO_COMPLETION: register a raw completion routine and context. The async helpers do this themselves. */
  setIoCompletion(routine: bigint | null, context: bigint): void;
  /** HSE_REQ_IS_KEEP_CONN. */
  isKeepConn(): boolean;
  /** HSE_REQ_CLOSE_CONNECTION. */
  closeConnection(): void;
  /** HSE_REQ_SET_FLUSH_FLAG (IIS 7+, undocumented; BOOL by value in lpvBuffer, ISAPI.md §7.2). */
  setFlushFlag(on: boolean): void;
  /** HSE_REQ_IS_CONNECTED. */
  isConnected(): boolean;
  /** HSE_REQ_MAP_URL_TO_PATH. */
  mapUrlToPath(url: string): string;
  /** HSE_REQ_MAP_URL_TO_PATH_EX. */
  mapUrlToPathEx(url: string): UrlMapEx;
  /** HSE_REQ_SEND_URL_REDIRECT_RESP: IIS answers 302 to an absolute URL. */
  sendUrlRedirect(url: string): void;
  /** HSE_REQ_TRANSMIT_FILE (always async). */
  transmitFile(options: TransmitFileOptions, callback: IoCallback): void;
  /** HSE_REQ_VECTOR_SEND, synchronous (no callback) or async (callback). */
  vectorSend(options: VectorSendOptions, callback?: IoCallback): void;
  /** HSE_REQ_REPORT_UNHEALTHY: ask IIS to recycle the worker process (when health monitoring is on). */
  reportUnhealthy(reason: string): void;
  /** HSE_REQ_GET_IMPERSONATION_TOKEN: a HANDLE owned by IIS; never close it. */
  getImpersonationToken(): bigint;
  /** HSE_REQ_GET_CERT_INFO_EX: the client certificate, or null when none was presented. */
  getCertInfo(): CertInfo | null;
  /** HSE_REQ_EXEC_URL (async child request), then HSE_REQ_GET_EXEC_URL_STATUS in the completion. */
  execUrl(options: ExecUrlOptions, callback: (error: IsapiError | null, status: ExecUrlStatus | null) => void): void;
  /** HSE_APPEND_LOG_PARAMETER: appended to the cs-uri-query log field. */
  appendLogParameter(text: string): void;
}
