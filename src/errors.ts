/**
 * Every error the library raises carries a stable `code` (never parse messages), in the style of
 * Node's own `ERR_*` codes and undici's error classes. Win32 failures also carry `win32Error`.
 */
export const ErrorCodes = {
  /** An ECB method was called after DONE_WITH_SESSION: the ECB may already serve another request (ISAPI.md §9). */
  ECB_DONE: 'ERR_ISAPI_ECB_DONE',
  /** DONE_WITH_SESSION was called a second time. */
  DONE_TWICE: 'ERR_ISAPI_DONE_TWICE',
  /** A second async operation was started while one was outstanding (ISAPI.md §7.3: one per request). */
  ASYNC_PENDING: 'ERR_ISAPI_ASYNC_PENDING',
  /** SEND_RESPONSE_HEADER(_EX) was called twice for one request (ISAPI.md §7.1). */
  HEADERS_SENT: 'ERR_ISAPI_HEADERS_SENT',
  /** A host callback returned FALSE; `win32Error` holds GetLastError(). */
  CALL_FAILED: 'ERR_ISAPI_CALL_FAILED',
  /** A value given to the library is not acceptable (wrong type, out of range, ...). */
  INVALID_ARGUMENT: 'ERR_ISAPI_INVALID_ARGUMENT',
  /** A server variable is larger than the configured cap. */
  VARIABLE_TOO_LARGE: 'ERR_ISAPI_VARIABLE_TOO_LARGE',
  /** A request description (MockEcb, EmulatedHost, inject) is malformed. */
  INVALID_REQUEST: 'ERR_ISAPI_INVALID_REQUEST',
  /** koffi could not be loaded, or was configured too late. */
  FFI_UNAVAILABLE: 'ERR_ISAPI_FFI_UNAVAILABLE',
  /** The request is not supported by this ECB implementation (e.g. TRANSMIT_FILE on the mock without a file). */
  NOT_SUPPORTED: 'ERR_ISAPI_NOT_SUPPORTED',
  /** A trace channel's name is already taken by a live channel (in this process or another one). */
  TRACE_NAME_IN_USE: 'ERR_ISAPI_TRACE_NAME_IN_USE',
  /** A trace collector could not attach: no live channel under that name, or the channel refused it. */
  TRACE_UNAVAILABLE: 'ERR_ISAPI_TRACE_UNAVAILABLE',
  /**
   * Reload on change (`watch`) was asked of a handler that cannot reload in place: SimpleHandler serves an app object
   * already imported on this thread, and a module cache cannot be emptied safely. ThreadPoolHandler reloads.
   */
  RELOAD_NOT_SUPPORTED: 'ERR_ISAPI_RELOAD_NOT_SUPPORTED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class IsapiError extends Error {
  readonly code: ErrorCode;
  /** The Win32 error code reported by the host, when there is one. */
  readonly win32Error: number | undefined;

  constructor(code: ErrorCode, message: string, options?: { win32Error?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IsapiError';
    this.code = code;
    this.win32Error = options?.win32Error;
  }
}

export function invalidArgument(message: string): IsapiError {
  return new IsapiError(ErrorCodes.INVALID_ARGUMENT, message);
}
