/**
 * What a host saw an extension do for one request. MockEcb, EmulatedHost and the C reference host all record
 * into this one shape, so tests assert the same things whatever ECB form ran, and `renderWire()` turns it into
 * the bytes IIS would put on the wire.
 */
export interface RecordedCall {
  /** `SSF:<HSE_REQ value>`, `WriteClient`, `ReadClient`, `GetServerVariable`. */
  readonly fn: string;
  readonly detail?: string | number;
}

export interface RecordedResponse {
  /** pszStatus as sent, e.g. `"200 OK"`; null if headers were never sent. */
  status: string | null;
  /** pszHeader as sent (ends in CRLF CRLF when the extension is correct). */
  headerBlock: string | null;
  /** fKeepConn as sent. */
  keepConn: boolean | null;
  /** Every byte written with WriteClient / VECTOR_SEND, in order. */
  body: Buffer;
  /** dwHttpStatusCode when the session ended. */
  httpStatusCode: number;
  /** lpszLogData when the session ended. */
  logData: string;
  /** The status passed to DONE_WITH_SESSION (null if it passed NULL or never called it). */
  doneStatus: number | null;
  /** How many times DONE_WITH_SESSION was called. Exactly 1 after HSE_STATUS_PENDING. */
  doneCount: number;
  /** HttpExtensionProc's return value. */
  procResult: number | null;
  /** HSE_REQ_CLOSE_CONNECTION was called. */
  closedConnection: boolean;
  /** Last value given to HSE_REQ_SET_FLUSH_FLAG. */
  flushFlag: boolean;
  /** URL given to HSE_REQ_SEND_URL_REDIRECT_RESP. */
  redirect: string | null;
  /** Reasons given to HSE_REQ_REPORT_UNHEALTHY. */
  unhealthy: string[];
  /** Strings given to HSE_APPEND_LOG_PARAMETER. */
  logParameters: string[];
}

export function emptyRecord(): RecordedResponse {
  return {
    status: null,
    headerBlock: null,
    keepConn: null,
    body: Buffer.alloc(0),
    httpStatusCode: 0,
    logData: '',
    doneStatus: null,
    doneCount: 0,
    procResult: null,
    closedConnection: false,
    flushFlag: false,
    redirect: null,
    unhealthy: [],
    logParameters: [],
  };
}

export interface RenderOptions {
  /** Protocol for the status line; default HTTP/1.1. */
  readonly protocol?: string;
  /** IIS's own headers; default `Server: Microsoft-IIS/10.0` and the current `Date`. Pass null to leave one out. */
  readonly server?: string | null;
  readonly date?: string | null;
}

/**
 * The response as IIS would send it: its status line built from pszStatus, its own Server and Date headers,
 * then the extension's header block (which ends the head with its CRLF CRLF), then the body bytes verbatim
 * (ISAPI.md §7.1: IIS adds "HTTP status, server version, message time"; §7.2: it does not re-frame the body).
 */
export function renderWire(record: RecordedResponse, options: RenderOptions = {}): Buffer {
  if (record.status === null || record.headerBlock === null) return record.body;
  const protocol = options.protocol ?? 'HTTP/1.1';
  const lines = [`${protocol} ${record.status}\r\n`];
  const server = options.server === undefined ? 'Microsoft-IIS/10.0' : options.server;
  const date = options.date === undefined ? new Date().toUTCString() : options.date;
  if (server !== null) lines.push(`Server: ${server}\r\n`);
  if (date !== null) lines.push(`Date: ${date}\r\n`);
  return Buffer.concat([Buffer.from(lines.join('') + record.headerBlock, 'latin1'), record.body]);
}
