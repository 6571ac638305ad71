/**
 * EmulatedHost: plays IIS inside this Node thread with *real native memory*. For each request it builds an
 * EXTENSION_CONTROL_BLOCK in koffi-allocated memory, fills its four function pointers with host callbacks
 * registered through koffi, and calls the extension's HttpExtensionProc with the ECB's address. NativeEcb then
 * runs exactly as under IIS: real pointers, real function calls, the size protocol, async completions
 * delivered through the registered PFN_HSE_IO_COMPLETION pointer.
 *
 * Its callbacks follow the same rules as MockEcb (request-model.ts gives both the same server variables), and it
 * records into the same RecordedResponse shape. Breaches of ISAPI's rules are not thrown at the extension (a
 * native host can only return FALSE) but kept in `violations` with the codes MockEcb uses.
 *
 * Callbacks: four registrations per host, made once and released by `close()`, so `koffi.stats().callbacks`
 * returns to where it was (koffi.md pitfall 13). Every callback catches everything and answers FALSE +
 * ERROR_INVALID_PARAMETER rather than let an exception into koffi's trampoline (pitfall 6).
 *
 * Two ways to take the response. By default the host *records* it (RecordedResponse: status, header block, body).
 * With a `sink` in execute()'s options it *streams* it instead, as IIS does: the head and each WriteClient go to
 * the sink as they happen, and an async WriteClient completes only when the sink says the bytes were accepted, so
 * the extension sees the client's real backpressure (ISAPI.md §7.3). createServer (dev-server.ts) puts a TCP
 * socket behind that sink. The request body may be an async iterable pulled on demand (RequestModel/BodySource).
 */
import { IsapiError, ErrorCodes, invalidArgument } from '../errors.js';
import { getAbi, type Abi } from '../ecb/abi.js';
import {
  ERROR_INSUFFICIENT_BUFFER,
  ERROR_INVALID_HANDLE,
  ERROR_INVALID_INDEX,
  ERROR_INVALID_PARAMETER,
  ERROR_NETNAME_DELETED,
  ERROR_NO_DATA,
  ERROR_NOT_SUPPORTED,
  HSE_APPEND_LOG_PARAMETER,
  HSE_IO_ASYNC,
  HSE_REQ_ASYNC_READ_CLIENT,
  HSE_REQ_CLOSE_CONNECTION,
  HSE_REQ_DONE_WITH_SESSION,
  HSE_REQ_GET_CERT_INFO_EX,
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
  HSE_STATUS_PENDING,
  HSE_URL_FLAGS_READ,
  HSE_URL_FLAGS_SCRIPT,
  HSE_VERSION,
} from '../ecb/constants.js';
import { cStringAt } from '../ecb/c-string.js';
import { getKoffi } from '../ecb/koffi.js';
import { registeredCompletionRoutine } from '../ecb/io-completion.js';
import { lastError } from '../ecb/last-error.js';
import { emptyRecord, type RecordedResponse } from '../ecb/recorded-response.js';
import { RequestModel, type RequestDescription } from '../ecb/request-model.js';

type Koffi = ReturnType<typeof getKoffi>;
type CompletionFn = (pEcb: bigint, ctx: bigint, cbIO: number, dwError: number) => void;
type ProcFn = (pEcb: bigint) => number;

/** What HttpExtensionProc is: a native function pointer (e.g. from nativeEntryPoints()) or a JS function. */
export type ExtensionProc = bigint | ((pEcb: bigint) => number);

export interface EmulatedHostOptions {
  /** Answer to HSE_REQ_IS_KEEP_CONN. Default: what the request asks for. */
  readonly keepConn?: boolean;
  /** How long to wait for DONE_WITH_SESSION after HSE_STATUS_PENDING before giving up. Default 30 s. */
  readonly doneTimeoutMs?: number;
  /** Make WriteClient fail once this many body bytes have been written (the client went away). */
  readonly failWritesAfterBytes?: number;
  /** The client certificate GET_CERT_INFO_EX returns. */
  readonly clientCertificate?: { readonly encoded: Buffer; readonly flags?: number };
}

/** Options for one execute() call. */
export interface ExecuteOptions {
  /** Stream the response to this sink instead of recording the body (the record keeps status and headers). */
  readonly sink?: SessionSink;
  /** Override the host's doneTimeoutMs for this call; 0 waits for DONE_WITH_SESSION without a limit. */
  readonly doneTimeoutMs?: number;
}

/**
 * Where a streamed session's response goes, and what the host asks about the connection. Every method is called
 * from inside a host callback (i.e. inside a koffi callback): it must not register koffi callbacks, and it must not
 * call back into the ECB. It may throw: the host turns that into FALSE + ERROR_INVALID_PARAMETER and a violation.
 */
export interface SessionSink {
  /** SEND_RESPONSE_HEADER_EX (or SEND_URL_REDIRECT_RESP) arrived: pszStatus, pszHeader and fKeepConn as sent. */
  onHeaders(status: string, headerBlock: string, keepConn: boolean): void;
  /**
   * Body bytes from WriteClient (a private copy). For an async WriteClient, call `done()` once the bytes were
   * accepted (the socket drained), or `done(win32Error)` if they could not be sent: that is when the completion
   * routine runs. For a synchronous WriteClient `done` is ignored: the bytes count as sent at once.
   */
  onWrite(bytes: Buffer, done: (win32Error?: number) => void): void;
  /** HSE_REQ_CLOSE_CONNECTION: close the client connection now (ISAPI.md §9). */
  onCloseConnection?(): void;
  /** The answer to HSE_REQ_IS_CONNECTED. Default: what the request model says. */
  isConnected?(): boolean;
  /** The answer to HSE_REQ_IS_KEEP_CONN. Default: the host option, else what the request asks for. */
  isKeepConn?(): boolean;
}

/** What GetExtensionVersion left in HSE_VERSION_INFO. */
export interface ExtensionVersion {
  /** The BOOL it returned: FALSE means IIS refuses to use the DLL (ISAPI.md §4). */
  readonly ok: boolean;
  readonly major: number;
  readonly minor: number;
  readonly description: string;
}

export interface HostViolation {
  readonly code: string;
  readonly message: string;
}

export interface EmulatedResult extends RecordedResponse {
  /** Rule breaches seen by the host, with MockEcb's error codes. Empty for a well-behaved extension. */
  readonly violations: HostViolation[];
  /** The ECB's address, for tests that check completions carried the right pECB. */
  readonly ecbAddress: bigint;
  /** True when DONE_WITH_SESSION never came within doneTimeoutMs. */
  readonly timedOut: boolean;
}

interface Conn {
  readonly id: bigint;
  readonly model: RequestModel;
  readonly record: RecordedResponse;
  readonly violations: HostViolation[];
  readonly allocations: unknown[];
  ecb: bigint;
  routine: bigint;
  context: bigint;
  pending: string | null;
  pendingRead: { target: bigint; size: number } | null;
  headersSent: boolean;
  written: number;
  done: boolean;
  settle: (() => void) | null;
  sink: SessionSink | null;
}

/**
 * ConnIDs come from one process-wide counter, so they are unique across hosts as well as within one (a call on a
 * finished request, or on another host's request, is always recognised). They must fit HCONN, which is pointer-sized:
 * 4 bytes on ia32 (docs/windows.md W4/L2), and are never 0, which a host never hands out.
 */
let lastConnId = 0n;
function nextConnId(pointerSize: number): bigint {
  lastConnId = BigInt.asUintN(8 * pointerSize, lastConnId + 1n);
  if (lastConnId === 0n) lastConnId = 1n;
  return lastConnId;
}

export class EmulatedHost {
  private readonly koffi: Koffi;
  private readonly abi: Abi;
  private readonly options: EmulatedHostOptions;
  private readonly conns = new Map<bigint, Conn>();
  private readonly callbacks: bigint[] = [];
  private readonly completionFns = new Map<bigint, CompletionFn>();
  private readonly procFns = new Map<bigint, ProcFn>();
  private closed = false;
  private liveBlocks = 0;

  constructor(options: EmulatedHostOptions = {}) {
    this.koffi = getKoffi();
    this.abi = getAbi();
    this.options = options;
    const { protos } = this.abi;
    const k = this.koffi;
    const reg = (fn: (...args: never[]) => number, proto: unknown): bigint => {
      const p = k.register(fn as never, k.pointer(proto as never)) as unknown as bigint;
      this.callbacks.push(p);
      return p;
    };
    this.gsvPtr = reg(this.guard(this.getServerVariable) as never, protos.GetServerVariable_raw);
    this.wcPtr = reg(this.guard(this.writeClient) as never, protos.WriteClient_raw);
    this.rcPtr = reg(this.guard(this.readClient) as never, protos.ReadClient_raw);
    this.ssfPtr = reg(this.guard(this.serverSupportFunction) as never, protos.ServerSupportFunction_raw);
  }

  private readonly gsvPtr: bigint;
  private readonly wcPtr: bigint;
  private readonly rcPtr: bigint;
  private readonly ssfPtr: bigint;

  /** Requests whose sessions have not ended. */
  get inFlight(): number {
    return this.conns.size;
  }

  /** koffi-allocated blocks not yet freed (ECBs, their strings, lpbData): 0 once every session has ended. */
  get allocatedBlocks(): number {
    return this.liveBlocks;
  }

  /**
   * Run one request: build its native ECB, call `proc`, wait for DONE_WITH_SESSION if it returned
   * HSE_STATUS_PENDING, free the ECB, and resolve with what the host saw.
   */
  async execute(request: RequestDescription | RequestModel, proc: ExtensionProc, options: ExecuteOptions = {}): Promise<EmulatedResult> {
    if (this.closed) throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, 'this EmulatedHost is closed');
    const model = request instanceof RequestModel ? request : new RequestModel(request);
    const readAhead = await model.body.fill(Math.min(model.readAheadSize, model.totalBytes));
    if (this.closed) throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, 'this EmulatedHost was closed during the read-ahead');
    const conn = this.build(model, readAhead);
    conn.sink = options.sink ?? null;
    const callProc = this.procOf(proc);
    let timedOut = false;
    const ended = new Promise<void>((resolve) => {
      conn.settle = resolve;
    });
    let result: number;
    try {
      result = callProc(conn.ecb) >>> 0;
    } catch (error) {
      this.finish(conn);
      throw error;
    }
    conn.record.procResult = result;
    if (result === HSE_STATUS_PENDING && !conn.done) {
      const limit = options.doneTimeoutMs ?? this.options.doneTimeoutMs ?? 30000;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        ended,
        new Promise<void>((resolve) => {
          if (limit === 0) return;
          timer = setTimeout(() => {
            timedOut = true;
            resolve();
          }, limit);
        }),
      ]);
      clearTimeout(timer);
    } else if (result !== HSE_STATUS_PENDING) {
      // The session ended when HttpExtensionProc returned (ISAPI.md §4); read the fields it left.
      this.readFinalFields(conn);
    }
    this.finish(conn);
    return { ...conn.record, violations: conn.violations, ecbAddress: conn.ecb, timedOut };
  }

  /**
   * IIS's first call into a freshly loaded extension (ISAPI.md §4): GetExtensionVersion with a real HSE_VERSION_INFO
   * in native memory. `entry` is the native pointer from nativeEntryPoints() (or a JS function, for tests).
   * Must not be called from inside a koffi callback when the entry point registers callbacks of its own.
   */
  getExtensionVersion(entry: bigint | ((pVer: bigint) => boolean | number)): ExtensionVersion {
    const fn = this.entryOf<(pVer: bigint) => boolean | number>(entry, 'GetExtensionVersion');
    const size = this.abi.sizes.HSE_VERSION_INFO;
    const p = this.koffi.alloc('uint8_t', size) as unknown as bigint;
    try {
      this.view(p, size).fill(0);
      const ok = Boolean(fn(p));
      const info = this.view(p, size);
      const off = this.abi.offsets.HSE_VERSION_INFO;
      const version = info.readUInt32LE(off.dwExtensionVersion);
      const desc = info.subarray(off.lpszExtensionDesc, off.lpszExtensionDesc + 256);
      const end = desc.indexOf(0);
      // dwExtensionVersion is MAKELONG(minor, major) (ISAPI.md §4).
      return { ok, major: version >>> 16, minor: version & 0xffff, description: desc.toString('latin1', 0, end === -1 ? desc.length : end) };
    } finally {
      this.koffi.free(p as never);
    }
  }

  /** IIS's last call before unloading (ISAPI.md §4), made only once no request is outstanding. */
  terminateExtension(entry: bigint | ((dwFlags: number) => boolean | number), dwFlags: number): boolean {
    const fn = this.entryOf<(dwFlags: number) => boolean | number>(entry, 'TerminateExtension');
    return Boolean(fn(dwFlags >>> 0));
  }

  private entryOf<F>(entry: bigint | F, proto: 'GetExtensionVersion' | 'TerminateExtension'): F {
    if (typeof entry === 'function') return entry;
    if (typeof entry !== 'bigint' || entry === 0n) throw invalidArgument(`${proto} must be a native function pointer (BigInt) or a function`);
    return this.koffi.decode(entry as never, this.abi.protos[proto]) as unknown as F;
  }

  /** Release the host's callbacks. Refuses while sessions are still open: their ECBs point at these callbacks. */
  close(): void {
    if (this.closed) return;
    if (this.conns.size > 0) throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, `EmulatedHost.close() with ${this.conns.size} session(s) still open`);
    this.closed = true;
    for (const p of this.callbacks.splice(0)) this.koffi.unregister(p as never);
  }

  // ── building the ECB ───────────────────────────────────────────────────────────────────────────────

  private alloc(conn: Conn, bytes: Buffer): bigint {
    const p = this.koffi.alloc('uint8_t', Math.max(1, bytes.length)) as unknown as bigint;
    conn.allocations.push(p);
    this.liveBlocks++;
    if (bytes.length > 0) Buffer.from(this.koffi.view(p as never, bytes.length) as ArrayBuffer).set(bytes);
    return p;
  }

  private build(model: RequestModel, readAhead: Buffer): Conn {
    const id = nextConnId(this.abi.pointerSize);
    const conn: Conn = {
      id,
      model,
      record: emptyRecord(),
      violations: [],
      allocations: [],
      ecb: 0n,
      routine: 0n,
      context: 0n,
      pending: null,
      pendingRead: null,
      headersSent: false,
      written: 0,
      done: false,
      settle: null,
      sink: null,
    };
    const off = this.abi.offsets.EXTENSION_CONTROL_BLOCK;
    const size = this.abi.sizes.EXTENSION_CONTROL_BLOCK;
    const ecb = Buffer.alloc(size);
    const ptr = (o: number, v: bigint): void => {
      if (this.abi.pointerSize === 8) ecb.writeBigUInt64LE(v, o);
      else ecb.writeUInt32LE(Number(v), o);
    };
    const str = (s: string): bigint => this.alloc(conn, Buffer.from(s + '\0', 'latin1'));
    ecb.writeUInt32LE(size, off.cbSize);
    ecb.writeUInt32LE(HSE_VERSION, off.dwVersion);
    ptr(off.ConnID, id);
    ecb.writeUInt32LE(200, off.dwHttpStatusCode);
    ptr(off.lpszMethod, str(model.method));
    ptr(off.lpszQueryString, str(model.queryString));
    ptr(off.lpszPathInfo, str(model.path));
    ptr(off.lpszPathTranslated, str(model.pathTranslated));
    ecb.writeUInt32LE(model.totalBytes, off.cbTotalBytes);
    ecb.writeUInt32LE(readAhead.length, off.cbAvailable);
    ptr(off.lpbData, this.alloc(conn, readAhead));
    ptr(off.lpszContentType, str(model.contentType));
    ptr(off.GetServerVariable, this.gsvPtr);
    ptr(off.WriteClient, this.wcPtr);
    ptr(off.ReadClient, this.rcPtr);
    ptr(off.ServerSupportFunction, this.ssfPtr);
    conn.ecb = this.alloc(conn, ecb);
    this.conns.set(id, conn);
    return conn;
  }

  private procOf(proc: ExtensionProc): ProcFn {
    if (typeof proc === 'function') return proc;
    if (typeof proc !== 'bigint' || proc === 0n) throw invalidArgument('proc must be a native function pointer (BigInt) or a function');
    let fn = this.procFns.get(proc);
    if (!fn) {
      fn = this.koffi.decode(proc as never, this.abi.protos.HttpExtensionProc) as unknown as ProcFn;
      this.procFns.set(proc, fn);
    }
    return fn;
  }

  private readFinalFields(conn: Conn): void {
    const off = this.abi.offsets.EXTENSION_CONTROL_BLOCK;
    conn.record.httpStatusCode = this.koffi.decode.uint32((conn.ecb + BigInt(off.dwHttpStatusCode)) as never) as number;
    // An 80-byte array inside the ECB, viewed whole: no koffi.decode with a length, which leaks (src/ecb/c-string.ts).
    const log = Buffer.from(this.koffi.view((conn.ecb + BigInt(off.lpszLogData)) as never, 80) as ArrayBuffer);
    const nul = log.indexOf(0);
    conn.record.logData = log.toString('utf8', 0, Math.min(nul < 0 ? 80 : nul, 79));
  }

  private finish(conn: Conn): void {
    if (!this.conns.has(conn.id)) return;
    this.conns.delete(conn.id);
    conn.done = true;
    // Free after the current call stack: the extension may still be inside the SSF call that ended the session.
    const allocations = conn.allocations.splice(0);
    setImmediate(() => {
      for (const p of allocations) this.koffi.free(p as never);
      this.liveBlocks -= allocations.length;
    });
  }

  // ── host callbacks ─────────────────────────────────────────────────────────────────────────────────

  /** Wrap a callback so that nothing escapes into koffi (pitfall 6) and a finished ConnID is refused. */
  private guard<A extends unknown[]>(fn: (conn: Conn, ...args: A) => number): (hConn: bigint, ...args: A) => number {
    return (hConn: bigint, ...args: A): number => {
      try {
        const conn = this.conns.get(hConn ?? 0n);
        if (!conn || conn.done) {
          this.lateCall(hConn);
          return this.error(ERROR_INVALID_HANDLE);
        }
        return fn.call(this, conn, ...args);
      } catch (error) {
        const conn = this.conns.get(hConn ?? 0n);
        conn?.violations.push({ code: ErrorCodes.INVALID_ARGUMENT, message: `host callback failed: ${String(error)}` });
        return this.error(ERROR_INVALID_PARAMETER);
      }
    };
  }

  /** Calls on a finished session are recorded against the most recent result that used that ConnID. */
  private readonly lateCalls = new Map<bigint, number>();
  private lateCall(hConn: bigint | null): void {
    if (hConn === null) return;
    this.lateCalls.set(hConn, (this.lateCalls.get(hConn) ?? 0) + 1);
  }

  /** How many calls arrived for a ConnID after its session ended (use after DONE_WITH_SESSION). */
  callsAfterDone(connId: bigint): number {
    return this.lateCalls.get(connId) ?? 0;
  }

  private error(code: number): number {
    lastError().set(code);
    return 0;
  }

  private violate(conn: Conn, code: string, message: string): void {
    conn.violations.push({ code, message });
  }

  private view(p: bigint, length: number): Buffer {
    return Buffer.from(this.koffi.view(p as never, length) as ArrayBuffer);
  }

  private u32(p: bigint): number {
    return this.koffi.decode.uint32(p as never) as number;
  }

  private setU32(p: bigint, v: number): void {
    this.koffi.encode(p as never, 'uint32_t', v);
  }

  private cstr(p: bigint | null, encoding: BufferEncoding = 'latin1'): string {
    if (!p) return '';
    return cStringAt(this.koffi, p, encoding);
  }

  private pointerAt(p: bigint, offset: number): bigint {
    return (this.koffi.decode(p as never, offset, 'void *') as unknown as bigint | null) ?? 0n;
  }

  private getServerVariable(conn: Conn, pName: bigint | null, pBuf: bigint | null, pSize: bigint | null): number {
    if (!pName || !pSize) return this.error(ERROR_INVALID_PARAMETER);
    const name = this.cstr(pName);
    const value = conn.model.lookup(name);
    if (value === undefined) return this.error(ERROR_INVALID_INDEX);
    if (value === null) return this.error(ERROR_NO_DATA);
    const needed = value.length + RequestModel.terminatorSize(name);
    const have = this.u32(pSize);
    if (!pBuf || have < needed) {
      this.setU32(pSize, needed);
      return this.error(ERROR_INSUFFICIENT_BUFFER);
    }
    const out = this.view(pBuf, needed);
    value.copy(out);
    out.fill(0, value.length);
    this.setU32(pSize, needed);
    return 1;
  }

  private accept(conn: Conn, length: number): { accepted: number; failed: boolean } {
    const limit = this.options.failWritesAfterBytes ?? Infinity;
    if (conn.written >= limit) return { accepted: 0, failed: true };
    const accepted = Math.min(length, limit - conn.written);
    return { accepted, failed: accepted < length };
  }

  private append(conn: Conn, bytes: Buffer): void {
    conn.record.body = conn.record.body.length === 0 ? Buffer.from(bytes) : Buffer.concat([conn.record.body, bytes]);
    conn.written += bytes.length;
  }

  private beginAsync(conn: Conn, what: string): boolean {
    if (conn.pending !== null) {
      this.violate(conn, ErrorCodes.ASYNC_PENDING, `${what} while ${conn.pending} is outstanding`);
      return false;
    }
    if (conn.routine === 0n) {
      this.violate(conn, ErrorCodes.INVALID_ARGUMENT, `${what} with no HSE_REQ_IO_COMPLETION routine registered`);
      return false;
    }
    conn.pending = what;
    return true;
  }

  /** Deliver a completion through the routine the extension registered, as an IIS I/O thread would. */
  private complete(conn: Conn, cbIO: number, dwError: number): void {
    conn.pending = null;
    if (conn.sink) {
      // Streamed sessions complete from socket callbacks, outside any guard: nothing may escape from here either.
      try {
        this.callCompletion(conn, cbIO, dwError);
      } catch (error) {
        this.violate(conn, ErrorCodes.INVALID_ARGUMENT, `IO completion routine failed: ${String(error)}`);
      }
      return;
    }
    this.callCompletion(conn, cbIO, dwError);
  }

  private callCompletion(conn: Conn, cbIO: number, dwError: number): void {
    let fn = this.completionFns.get(conn.routine);
    if (!fn) {
      fn = this.koffi.decode(conn.routine as never, this.abi.protos.PFN_HSE_IO_COMPLETION) as unknown as CompletionFn;
      this.completionFns.set(conn.routine, fn);
    }
    if (conn.routine === registeredCompletionRoutine()) {
      fn(conn.ecb, conn.context, cbIO, dwError);
      return;
    }
    // A routine this thread did not register: a ThreadPoolHandler worker's. Called from here, koffi would block this
    // thread until the worker ran it, while the worker may itself be blocked in a call relayed to this thread (an
    // async WriteClient waiting for its return): a deadlock (docs/windows.md O1). IIS calls completions from its own
    // I/O threads; koffi's .async() does the same from one of its pool threads, and relays the call to the worker.
    (fn as unknown as { async: (...args: unknown[]) => void }).async(conn.ecb, conn.context, cbIO, dwError, (error: unknown) => {
      if (error) this.violate(conn, ErrorCodes.INVALID_ARGUMENT, `IO completion routine failed: ${String(error)}`);
    });
  }

  /** A streamed WriteClient: hand a copy to the sink; the async completion waits for the sink's `done`. */
  private streamWrite(conn: Conn, sink: SessionSink, pBuf: bigint | null, length: number, pBytes: bigint | null, async: boolean): number {
    const { accepted, failed } = this.accept(conn, length);
    // A copy: the extension's buffer belongs to it again as soon as the completion has run (koffi.md pitfall 7).
    const bytes = accepted > 0 ? Buffer.from(this.view(pBuf as bigint, accepted)) : Buffer.alloc(0);
    conn.written += accepted;
    if (!async) {
      sink.onWrite(bytes, () => undefined);
      if (pBytes) this.setU32(pBytes, accepted);
      return failed ? this.error(ERROR_NETNAME_DELETED) : 1;
    }
    let called = false;
    sink.onWrite(bytes, (win32Error = 0) => {
      if (called) return;
      called = true;
      // The session may have ended meanwhile (the ECB is freed): a late completion must go nowhere.
      if (conn.done || !this.conns.has(conn.id)) return;
      const error = win32Error !== 0 ? win32Error : failed ? ERROR_NETNAME_DELETED : 0;
      this.complete(conn, error !== 0 && win32Error !== 0 ? 0 : accepted, error);
    });
    return 1;
  }

  private writeClient(conn: Conn, pBuf: bigint | null, pBytes: bigint | null, flags: number): number {
    if (!pBytes) return this.error(ERROR_INVALID_PARAMETER);
    const length = this.u32(pBytes);
    if (length > 0 && !pBuf) return this.error(ERROR_INVALID_PARAMETER);
    const sink = conn.sink;
    if (sink) {
      const async = (flags & HSE_IO_ASYNC) !== 0;
      if (!async && conn.pending !== null) this.violate(conn, ErrorCodes.ASYNC_PENDING, `WriteClient while ${conn.pending} is outstanding`);
      if (async && !this.beginAsync(conn, 'WriteClient')) return this.error(ERROR_INVALID_PARAMETER);
      if (!async) return this.streamWrite(conn, sink, pBuf, length, pBytes, false);
      // Read the caller's memory only when the "I/O" runs, on a later turn (koffi.md 6d), as the recording path does.
      setImmediate(() => {
        if (conn.done) return;
        try {
          this.streamWrite(conn, sink, pBuf, length, null, true);
        } catch (error) {
          this.violate(conn, ErrorCodes.INVALID_ARGUMENT, `streaming WriteClient failed: ${String(error)}`);
          this.complete(conn, 0, ERROR_NETNAME_DELETED);
        }
      });
      return 1;
    }
    if ((flags & HSE_IO_ASYNC) === 0) {
      if (conn.pending !== null) this.violate(conn, ErrorCodes.ASYNC_PENDING, `WriteClient while ${conn.pending} is outstanding`);
      const { accepted, failed } = this.accept(conn, length);
      if (accepted > 0) this.append(conn, this.view(pBuf as bigint, accepted));
      this.setU32(pBytes, accepted);
      return failed ? this.error(ERROR_NETNAME_DELETED) : 1;
    }
    if (!this.beginAsync(conn, 'WriteClient')) return this.error(ERROR_INVALID_PARAMETER);
    // Read the caller's memory only when the "I/O" runs, on a later turn (koffi.md 6d).
    setImmediate(() => {
      if (conn.done) return;
      const { accepted, failed } = this.accept(conn, length);
      if (accepted > 0) this.append(conn, this.view(pBuf as bigint, accepted));
      this.complete(conn, accepted, failed ? ERROR_NETNAME_DELETED : 0);
    });
    return 1;
  }

  private readClient(conn: Conn, pBuf: bigint | null, pSize: bigint | null): number {
    if (!pBuf || !pSize) return this.error(ERROR_INVALID_PARAMETER);
    if (conn.pending !== null) this.violate(conn, ErrorCodes.ASYNC_PENDING, `ReadClient while ${conn.pending} is outstanding`);
    const want = this.u32(pSize);
    const chunk = conn.model.body.takeSync(want);
    if (chunk.length === 0 && !conn.model.body.finished) {
      // A native host would block this thread until bytes arrive; the JS thread cannot. Refuse visibly.
      this.violate(conn, ErrorCodes.NOT_SUPPORTED, 'synchronous ReadClient on a streamed body would block the JS thread');
      return this.error(ERROR_NOT_SUPPORTED);
    }
    if (chunk.length > 0) chunk.copy(this.view(pBuf, chunk.length));
    this.setU32(pSize, chunk.length);
    return 1;
  }

  private serverSupportFunction(conn: Conn, request: number, pBuf: bigint | null, pSize: bigint | null, pType: bigint | null): number {
    const { abi } = this;
    switch (request) {
      case HSE_REQ_IO_COMPLETION:
        conn.routine = pBuf ?? 0n;
        conn.context = pType ?? 0n;
        return 1;
      case HSE_REQ_SEND_RESPONSE_HEADER_EX: {
        if (!pBuf) return this.error(ERROR_INVALID_PARAMETER);
        if (conn.headersSent) {
          this.violate(conn, ErrorCodes.HEADERS_SENT, 'SEND_RESPONSE_HEADER_EX called twice');
          return this.error(ERROR_INVALID_PARAMETER);
        }
        const off = abi.offsets.HSE_SEND_HEADER_EX_INFO;
        const info = this.view(pBuf, abi.sizes.HSE_SEND_HEADER_EX_INFO);
        const read = (o: number): bigint => (abi.pointerSize === 8 ? info.readBigUInt64LE(o) : BigInt(info.readUInt32LE(o)));
        const status = read(off.pszStatus);
        const headers = read(off.pszHeader);
        const cchStatus = info.readUInt32LE(off.cchStatus);
        const cchHeader = info.readUInt32LE(off.cchHeader);
        conn.record.status = status ? this.view(status, cchStatus).toString('latin1') : '200 OK';
        conn.record.headerBlock = headers && cchHeader > 0 ? this.view(headers, cchHeader).toString('latin1') : '';
        const keep = info.readInt32LE(off.fKeepConn);
        if (keep !== 0 && keep !== 1) this.violate(conn, ErrorCodes.INVALID_ARGUMENT, `fKeepConn must be 0 or 1, got ${keep}`);
        conn.record.keepConn = keep !== 0;
        conn.headersSent = true;
        conn.sink?.onHeaders(conn.record.status, conn.record.headerBlock, keep !== 0);
        return 1;
      }
      case HSE_REQ_DONE_WITH_SESSION: {
        conn.record.doneCount++;
        conn.record.doneStatus = pBuf ? this.u32(pBuf) : null;
        if (conn.pending !== null) this.violate(conn, ErrorCodes.ASYNC_PENDING, `DONE_WITH_SESSION while ${conn.pending} is outstanding`);
        this.readFinalFields(conn);
        conn.done = true;
        conn.settle?.();
        return 1;
      }
      case HSE_REQ_ASYNC_READ_CLIENT: {
        if (!pBuf || !pSize) return this.error(ERROR_INVALID_PARAMETER);
        if (!this.beginAsync(conn, 'ASYNC_READ_CLIENT')) return this.error(ERROR_INVALID_PARAMETER);
        const want = this.u32(pSize);
        const target = pBuf;
        conn.pendingRead = { target, size: want };
        conn.model.body.take(want).then(
          (chunk) => {
            if (conn.done || conn.pendingRead?.target !== target) return;
            conn.pendingRead = null;
            if (chunk.length > 0) chunk.copy(this.view(target, chunk.length));
            this.complete(conn, chunk.length, 0);
          },
          () => {
            if (conn.done || conn.pendingRead?.target !== target) return;
            conn.pendingRead = null;
            this.complete(conn, 0, ERROR_NETNAME_DELETED);
          },
        );
        return 1;
      }
      case HSE_REQ_IS_KEEP_CONN: {
        if (!pBuf) return this.error(ERROR_INVALID_PARAMETER);
        const keep = conn.sink?.isKeepConn ? conn.sink.isKeepConn() : (this.options.keepConn ?? conn.model.clientKeepsAlive());
        this.koffi.encode(pBuf as never, 'int32_t', keep ? 1 : 0);
        return 1;
      }
      case HSE_REQ_CLOSE_CONNECTION: {
        conn.record.closedConnection = true;
        conn.sink?.onCloseConnection?.();
        if (conn.pendingRead) {
          conn.pendingRead = null;
          setImmediate(() => {
            if (!conn.done) this.complete(conn, 0, ERROR_NETNAME_DELETED);
          });
        }
        return 1;
      }
      case HSE_REQ_SET_FLUSH_FLAG:
        conn.record.flushFlag = (pBuf ?? 0n) !== 0n;
        return 1;
      case HSE_REQ_IS_CONNECTED:
        if (!pBuf) return this.error(ERROR_INVALID_PARAMETER);
        {
          const connected = conn.sink?.isConnected ? conn.sink.isConnected() : !(conn.record.closedConnection || conn.model.body.aborted);
          this.koffi.encode(pBuf as never, 'int32_t', connected ? 1 : 0);
        }
        return 1;
      case HSE_REQ_REPORT_UNHEALTHY:
        conn.record.unhealthy.push(this.cstr(pBuf));
        return 1;
      case HSE_APPEND_LOG_PARAMETER:
        conn.record.logParameters.push(this.cstr(pBuf));
        return 1;
      case HSE_REQ_SEND_URL_REDIRECT_RESP: {
        const url = this.cstr(pBuf);
        conn.record.redirect = url;
        conn.record.status = '302 Object Moved';
        conn.record.headerBlock = `Location: ${url}\r\nContent-Length: 0\r\n\r\n`;
        conn.headersSent = true;
        conn.sink?.onHeaders(conn.record.status, conn.record.headerBlock, true);
        return 1;
      }
      case HSE_REQ_MAP_URL_TO_PATH: {
        if (!pBuf || !pSize) return this.error(ERROR_INVALID_PARAMETER);
        const out = Buffer.from(`C:\\inetpub\\wwwroot${this.cstr(pBuf).split('?')[0]!.replace(/\//g, '\\')}\0`, 'latin1');
        if (this.u32(pSize) < out.length) {
          this.setU32(pSize, out.length);
          return this.error(ERROR_INSUFFICIENT_BUFFER);
        }
        out.copy(this.view(pBuf, out.length));
        this.setU32(pSize, out.length);
        return 1;
      }
      case HSE_REQ_MAP_URL_TO_PATH_EX: {
        if (!pBuf || !pType) return this.error(ERROR_INVALID_PARAMETER);
        const url = this.cstr(pBuf);
        const path = `C:\\inetpub\\wwwroot${url.split('?')[0]!.replace(/\//g, '\\')}`;
        const off = abi.offsets.HSE_URL_MAPEX_INFO;
        const info = this.view(pType, abi.sizes.HSE_URL_MAPEX_INFO);
        info.fill(0);
        info.write(path.slice(0, 259), off.lpszPath, 'latin1');
        info.writeUInt32LE(HSE_URL_FLAGS_READ | HSE_URL_FLAGS_SCRIPT, off.dwFlags);
        info.writeUInt32LE(path.length, off.cchMatchingPath);
        info.writeUInt32LE(url.length, off.cchMatchingURL);
        return 1;
      }
      case HSE_REQ_GET_IMPERSONATION_TOKEN:
        if (!pBuf) return this.error(ERROR_INVALID_PARAMETER);
        this.koffi.encode(pBuf as never, 'void *', 0x1234n as never);
        return 1;
      case HSE_REQ_GET_CERT_INFO_EX: {
        if (!pBuf) return this.error(ERROR_INVALID_PARAMETER);
        const off = abi.offsets.CERT_CONTEXT_EX;
        const cc = abi.offsets.CERT_CONTEXT;
        const info = this.view(pBuf, abi.sizes.CERT_CONTEXT_EX);
        const cert = this.options.clientCertificate;
        const base = off.CertContext;
        if (!cert) {
          info.writeUInt32LE(0, base + cc.cbCertEncoded);
          info.writeUInt32LE(0, off.dwCertificateFlags);
          return 1;
        }
        const capacity = info.readUInt32LE(off.cbAllocated);
        info.writeUInt32LE(cert.encoded.length, base + cc.cbCertEncoded);
        if (capacity < cert.encoded.length) return this.error(ERROR_INSUFFICIENT_BUFFER);
        const target = this.pointerAt(pBuf, base + cc.pbCertEncoded);
        cert.encoded.copy(this.view(target, cert.encoded.length));
        info.writeUInt32LE(1, base + cc.dwCertEncodingType);
        info.writeUInt32LE(cert.flags ?? 1, off.dwCertificateFlags);
        return 1;
      }
      default:
        // Apache's mod_isapi answers unsupported requests this way (ISAPI.md §10, last paragraph).
        return this.error(ERROR_INVALID_PARAMETER);
    }
  }
}
