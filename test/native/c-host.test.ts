/**
 * Proves the C reference host itself: hand-written procs that use nothing but raw koffi calls (ECB fields decoded
 * at their x64 offsets, the four server functions called through local prototypes) run against host.c from its
 * own pthreads. The library's own ECB code is deliberately not used here.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getKoffi } from '../../src/ecb/koffi.js';
import { RequestModel, toAnsi } from '../../src/ecb/request-model.js';
import {
  ERROR_INSUFFICIENT_BUFFER,
  ERROR_INVALID_HANDLE,
  ERROR_INVALID_INDEX,
  ERROR_INVALID_PARAMETER,
  ERROR_NETNAME_DELETED,
  ERROR_NO_DATA,
  ERROR_OPERATION_ABORTED,
  HSE_APPEND_LOG_PARAMETER,
  HSE_IO_ASYNC,
  HSE_REQ_ASYNC_READ_CLIENT,
  HSE_REQ_CLOSE_CONNECTION,
  HSE_REQ_DONE_WITH_SESSION,
  HSE_REQ_IO_COMPLETION,
  HSE_REQ_IS_CONNECTED,
  HSE_REQ_IS_KEEP_CONN,
  HSE_REQ_REPORT_UNHEALTHY,
  HSE_REQ_SEND_RESPONSE_HEADER_EX,
  HSE_REQ_SEND_URL_REDIRECT_RESP,
  HSE_REQ_SET_FLUSH_FLAG,
  HSE_STATUS_ERROR,
  HSE_STATUS_PENDING,
  HSE_STATUS_SUCCESS,
  HSE_STATUS_SUCCESS_AND_KEEP_CONN,
} from '../../src/ecb/constants.js';
import { CHost, compileHost, hostEcbLayout, hostLastError, hostThreadId, loadCHost, type CHostResult, type KoffiType } from './c-host.js';

const koffi = getKoffi();

/* x64 offsets (ISAPI.md §2), written out by hand on purpose: the host's static asserts and hostEcbLayout() check them. */
const OFF = {
  cbSize: 0,
  dwVersion: 4,
  ConnID: 8,
  dwHttpStatusCode: 16,
  lpszLogData: 20,
  lpszMethod: 104,
  lpszQueryString: 112,
  lpszPathInfo: 120,
  lpszPathTranslated: 128,
  cbTotalBytes: 136,
  cbAvailable: 140,
  lpbData: 144,
  lpszContentType: 152,
  GetServerVariable: 160,
  WriteClient: 168,
  ReadClient: 176,
  ServerSupportFunction: 184,
} as const;

/* Local prototypes, anonymous so they never clash with named types declared elsewhere in the process. */
const GSV_t = koffi.proto('int __stdcall (void *hConn, const char *name, void *buf, uint32_t *size)');
const WC_t = koffi.proto('int __stdcall (void *hConn, void *buf, uint32_t *bytes, uint32_t flags)');
const RC_t = koffi.proto('int __stdcall (void *hConn, void *buf, uint32_t *size)');
const SSF_t = koffi.proto('int __stdcall (void *hConn, uint32_t req, void *buf, void *size, void *type)');
const IoCompletion_t = koffi.proto('void __stdcall (void *pECB, void *ctx, uint32_t cbIO, uint32_t dwError)');

type Ptr = bigint | Buffer | Uint8Array | Uint32Array | Int32Array | null;
type GsvFn = (h: bigint, name: string | null, buf: Buffer | null, size: Uint32Array | null) => number;
type WcFn = (h: bigint, buf: Buffer | null, bytes: Uint32Array | null, flags: number) => number;
type RcFn = (h: bigint, buf: Buffer | null, size: Uint32Array | null) => number;
type SsfFn = (h: bigint, req: number, buf: Ptr, size: Ptr, type: Ptr) => number;

const decoded = new Map<string, unknown>();
function fnAt<T>(ptr: bigint, proto: KoffiType, tag: string): T {
  const key = `${tag}:${ptr}`;
  let fn = decoded.get(key);
  if (fn === undefined) {
    fn = koffi.decode(ptr, proto);
    decoded.set(key, fn);
  }
  return fn as T;
}

interface CallResult {
  ok: number;
  errno: number;
}

/** A raw view of one ECB: single-field decodes and direct calls through its function pointers. */
class RawEcb {
  readonly conn: bigint;
  constructor(readonly p: bigint) {
    this.conn = koffi.decode(p, OFF.ConnID, 'void *') as bigint;
  }
  u32(off: number): number {
    return koffi.decode(this.p, off, 'uint32_t') as number;
  }
  str(off: number): string {
    return koffi.decode(this.p, off, 'const char *') as string;
  }
  /** `n` bytes at the char* stored at `off` (koffi's string decode is UTF-8; ECB strings are ANSI bytes). */
  bytesAt(off: number, n: number): Buffer {
    return Buffer.from(new Uint8Array(koffi.view(koffi.decode(this.p, off, 'void *') as bigint, n)));
  }
  private fn<T>(off: number, proto: KoffiType, tag: string): T {
    return fnAt<T>(koffi.decode(this.p, off, 'void *') as bigint, proto, tag);
  }
  gsv(name: string | null, buf: Buffer | null, size: Uint32Array | null): CallResult {
    const ok = this.fn<GsvFn>(OFF.GetServerVariable, GSV_t, 'gsv')(this.conn, name, buf, size);
    return { ok, errno: koffi.errno() };
  }
  write(buf: Buffer, flags = 0): CallResult & { n: number } {
    const n = new Uint32Array([buf.length]);
    const ok = this.fn<WcFn>(OFF.WriteClient, WC_t, 'wc')(this.conn, buf, n, flags);
    return { ok, errno: koffi.errno(), n: n[0] as number };
  }
  read(max: number): Buffer {
    const buf = Buffer.alloc(max);
    const n = new Uint32Array([max]);
    const ok = this.fn<RcFn>(OFF.ReadClient, RC_t, 'rc')(this.conn, buf, n);
    if (!ok) throw new Error(`ReadClient failed with ${koffi.errno()}`);
    return buf.subarray(0, n[0]);
  }
  ssf(req: number, buf: Ptr = null, size: Ptr = null, type: Ptr = null): CallResult {
    const ok = this.fn<SsfFn>(OFF.ServerSupportFunction, SSF_t, 'ssf')(this.conn, req, buf, size, type);
    return { ok, errno: koffi.errno() };
  }
  /** SEND_RESPONSE_HEADER_EX with a hand-built 32-byte HSE_SEND_HEADER_EX_INFO. */
  sendHeaders(status: string, headers: string, keepConn: boolean): CallResult {
    const st = Buffer.from(`${status}\0`, 'latin1');
    const hd = Buffer.from(`${headers}\0`, 'latin1');
    const info = Buffer.alloc(32);
    info.writeBigUInt64LE(BigInt(koffi.address(st)), 0);
    info.writeBigUInt64LE(BigInt(koffi.address(hd)), 8);
    info.writeUInt32LE(st.length - 1, 16);
    info.writeUInt32LE(hd.length - 1, 20);
    info.writeInt32LE(keepConn ? 1 : 0, 24);
    return this.ssf(HSE_REQ_SEND_RESPONSE_HEADER_EX, info);
  }
  done(status: number | null): CallResult {
    return this.ssf(HSE_REQ_DONE_WITH_SESSION, status === null ? null : new Uint32Array([status]));
  }
  setStatus(code: number): void {
    koffi.encode(this.p, OFF.dwHttpStatusCode, 'uint32_t', code);
  }
  setLogData(text: string): void {
    Buffer.from(koffi.view(this.p + BigInt(OFF.lpszLogData), 80)).write(`${text}\0`, 'utf8');
  }
  /** The read-ahead bytes, copied (a view would dangle after the session). */
  readAhead(): Buffer {
    const avail = this.u32(OFF.cbAvailable);
    if (avail === 0) return Buffer.alloc(0);
    const data = koffi.decode(this.p, OFF.lpbData, 'void *') as bigint;
    return Buffer.from(new Uint8Array(koffi.view(data, avail)));
  }
  /** The whole body: read-ahead, then ReadClient until cbTotalBytes or a 0-byte read. */
  readBody(): Buffer {
    const total = this.u32(OFF.cbTotalBytes);
    const parts = [this.readAhead()];
    let got = (parts[0] as Buffer).length;
    while (total === 0xffffffff || got < total) {
      const chunk = this.read(16384);
      if (chunk.length === 0) break;
      parts.push(chunk);
      got += chunk.length;
    }
    return Buffer.concat(parts);
  }
  /** GetServerVariable with the documented size protocol: a small first try, then the size the host asked for. */
  variable(name: string): Buffer | number {
    const size = new Uint32Array([8]);
    let buf = Buffer.alloc(8);
    let r = this.gsv(name, buf, size);
    if (!r.ok && r.errno === ERROR_INSUFFICIENT_BUFFER) {
      buf = Buffer.alloc(size[0] as number);
      r = this.gsv(name, buf, size);
    }
    return r.ok ? buf.subarray(0, size[0]) : r.errno;
  }
}

/* One completion routine for the whole file; ctx is a key into `io`, which also keeps async buffers alive. */
interface PendingIo {
  ecb: RawEcb;
  buf: Buffer;
  then: (cbIO: number, error: number) => void;
}
const io = new Map<number, PendingIo>();
let nextCtx = 1;
const asyncErrors: unknown[] = [];
let ecbMismatches = 0;
let startCallbacks = 0;
let completionPtr: bigint | null = null;
let host: CHost;

function onCompletion(pEcb: unknown, ctx: unknown, cbIO: number, error: number): void {
  try {
    const key = Number(ctx ?? 0);
    const entry = io.get(key);
    io.delete(key);
    if (!entry) throw new Error(`completion for unknown ctx ${key}`);
    if (pEcb !== entry.ecb.p) ecbMismatches++;
    entry.then(cbIO, error);
  } catch (err) {
    asyncErrors.push(err);
  }
}

function registerIo(ecb: RawEcb, buf: Buffer, then: PendingIo['then']): void {
  const ctx = nextCtx++;
  io.set(ctx, { ecb, buf, then });
  const r = ecb.ssf(HSE_REQ_IO_COMPLETION, completionPtr, null, BigInt(ctx));
  if (!r.ok) throw new Error(`IO_COMPLETION failed with ${r.errno}`);
}

function writeAsync(ecb: RawEcb, buf: Buffer, then: PendingIo['then']): void {
  registerIo(ecb, buf, then);
  const r = ecb.write(buf, HSE_IO_ASYNC);
  if (!r.ok) throw new Error(`async WriteClient failed with ${r.errno}`);
}

function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

/** Echo the body. `async` mode returns PENDING and finishes from setImmediate with async writes of `chunk` bytes. */
function echoProc(mode: 'sync' | 'async' | 'header', chunk = 25 * 1024) {
  return (p: bigint): number => {
    const ecb = new RawEcb(p);
    let async = mode === 'async';
    if (mode === 'header') {
      const v = ecb.variable('HTTP_X_MODE');
      async = Buffer.isBuffer(v) && v.toString('latin1') === 'async\0';
    }
    const reqId = ecb.variable('HEADER_X-Req-Id');
    const id = Buffer.isBuffer(reqId) ? reqId.subarray(0, reqId.length - 1).toString('latin1') : '?';
    const finish = (body: Buffer): string => `Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\nX-Req-Id: ${id}\r\n\r\n`;
    if (!async) {
      const body = ecb.readBody();
      ecb.sendHeaders('200 OK', finish(body), true);
      if (body.length > 0) ecb.write(body);
      ecb.setLogData(`sync ${id}`);
      return HSE_STATUS_SUCCESS;
    }
    setImmediate(() => {
      try {
        const body = ecb.readBody();
        ecb.sendHeaders('200 OK', finish(body), true);
        let offset = 0;
        const next = (): void => {
          if (offset >= body.length) {
            ecb.setStatus(200);
            ecb.setLogData(`async ${id}`);
            ecb.done(HSE_STATUS_SUCCESS_AND_KEEP_CONN);
            return;
          }
          const piece = body.subarray(offset, offset + chunk);
          offset += piece.length;
          writeAsync(ecb, piece, (cbIO, error) => {
            if (error !== 0 || cbIO !== piece.length) asyncErrors.push(new Error(`write completion ${cbIO}/${piece.length} error ${error}`));
            next();
          });
        };
        next();
      } catch (err) {
        asyncErrors.push(err);
      }
    });
    return HSE_STATUS_PENDING;
  };
}

beforeAll(() => {
  loadCHost(); // compiles host.c on first use (once per source version)
  startCallbacks = koffi.stats().callbacks;
  completionPtr = koffi.register(onCompletion, koffi.pointer(IoCompletion_t)) as bigint;
  host = new CHost();
});

afterAll(async () => {
  await host.close();
  if (completionPtr !== null) koffi.unregister(completionPtr);
  expect(koffi.stats().callbacks).toBe(startCallbacks);
  expect(io.size).toBe(0);
});

afterEach(() => {
  expect(asyncErrors).toEqual([]);
  expect(ecbMismatches).toBe(0);
});

function noViolations(r: CHostResult): void {
  expect(r.violations).toEqual({ useAfterDone: 0, asyncOverlap: 0, headersTwice: 0, doneTwice: 0 });
  expect(r.timedOut).toBe(false);
  expect(r.procError).toBeNull();
}

describe('the C reference host', () => {
  test('lays the ECB out as x64 IIS does and pins itself', () => {
    expect(hostEcbLayout()).toEqual([192, 0, 4, 8, 16, 20, 104, 112, 120, 128, 136, 140, 144, 152, 160, 168, 176, 184]);
    expect(host.api.pinned()).toBe(1);
  });

  test('GetServerVariable: size protocol, 122 then success, 1413, 232, 87, case-insensitive, UNICODE_', async () => {
    const model = new RequestModel({
      method: 'get',
      url: '/app/caf%C3%A9?a=1&b=2',
      headers: { 'X-Req-Id': 'r-17', Cookie: 'c'.repeat(600), 'Content-Type': 'text/plain' },
      serverVariables: { AUTH_USER: null },
    });
    const seen: Record<string, unknown> = {};
    const r = await host.execute(model, (p) => {
      const ecb = new RawEcb(p);
      seen.fields = {
        cbSize: ecb.u32(OFF.cbSize),
        dwVersion: ecb.u32(OFF.dwVersion),
        status: ecb.u32(OFF.dwHttpStatusCode),
        method: ecb.str(OFF.lpszMethod),
        query: ecb.str(OFF.lpszQueryString),
        pathInfo: ecb.bytesAt(OFF.lpszPathInfo, toAnsi(model.path).length + 1),
        pathTranslated: ecb.bytesAt(OFF.lpszPathTranslated, toAnsi(model.pathTranslated).length + 1),
        contentType: ecb.str(OFF.lpszContentType),
        total: ecb.u32(OFF.cbTotalBytes),
        avail: ecb.u32(OFF.cbAvailable),
        connIsEcb: ecb.conn === p,
      };
      const size = new Uint32Array([8]);
      const small = Buffer.alloc(8);
      seen.first = { ...ecb.gsv('ALL_RAW', small, size), size: size[0] };
      const big = Buffer.alloc(size[0] as number);
      seen.second = { ...ecb.gsv('ALL_RAW', big, size), size: size[0] };
      seen.allRaw = Buffer.from(big.subarray(0, size[0]));
      const nullSize = new Uint32Array([0]);
      seen.nullBuffer = { ...ecb.gsv('SERVER_PORT', null, nullSize), size: nullSize[0] };
      seen.unknown = ecb.gsv('NO_SUCH_VAR', Buffer.alloc(64), new Uint32Array([64]));
      seen.hostLastError = hostLastError();
      seen.noData = ecb.gsv('AUTH_USER', Buffer.alloc(64), new Uint32Array([64]));
      seen.nullName = ecb.gsv(null, Buffer.alloc(64), new Uint32Array([64]));
      seen.nullSize = ecb.gsv('URL', Buffer.alloc(64), null);
      seen.header = ecb.variable('http_x_req_id');
      seen.headerLiteral = ecb.variable('HEADER_X-Req-Id');
      seen.unicodeUrl = ecb.variable('unicode_url');
      seen.unicodeHeader = ecb.variable('UNICODE_HTTP_X_REQ_ID');
      seen.url = ecb.variable('URL');
      seen.jsThread = hostThreadId();
      ecb.sendHeaders('200 OK', 'Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n', false);
      ecb.write(Buffer.from('ok'));
      ecb.setStatus(201);
      ecb.setLogData('gsv-ok café');
      return HSE_STATUS_SUCCESS;
    });
    noViolations(r);
    expect(seen.fields).toEqual({
      cbSize: 192,
      dwVersion: 0x80000,
      status: 200,
      method: 'GET',
      query: 'a=1&b=2',
      pathInfo: Buffer.concat([toAnsi('/app/café'), Buffer.alloc(1)]),
      pathTranslated: Buffer.concat([toAnsi('C:\\inetpub\\wwwroot\\app\\café'), Buffer.alloc(1)]),
      contentType: 'text/plain',
      total: 0,
      avail: 0,
      connIsEcb: true,
    });
    const allRaw = model.lookup('ALL_RAW') as Buffer;
    expect(seen.first).toEqual({ ok: 0, errno: ERROR_INSUFFICIENT_BUFFER, size: allRaw.length + 1 });
    expect(seen.second).toEqual({ ok: 1, errno: expect.any(Number), size: allRaw.length + 1 });
    expect(seen.allRaw).toEqual(Buffer.concat([allRaw, Buffer.from([0])]));
    expect(seen.nullBuffer).toEqual({ ok: 0, errno: ERROR_INSUFFICIENT_BUFFER, size: 3 });
    expect(seen.unknown).toEqual({ ok: 0, errno: ERROR_INVALID_INDEX });
    expect(seen.hostLastError).toBe(ERROR_INVALID_INDEX);
    expect(seen.noData).toEqual({ ok: 0, errno: ERROR_NO_DATA });
    expect(seen.nullName).toEqual({ ok: 0, errno: ERROR_INVALID_PARAMETER });
    expect(seen.nullSize).toEqual({ ok: 0, errno: ERROR_INVALID_PARAMETER });
    expect(seen.header).toEqual(Buffer.from('r-17\0'));
    expect(seen.headerLiteral).toEqual(Buffer.from('r-17\0'));
    expect(seen.unicodeUrl).toEqual(Buffer.concat([model.lookup('UNICODE_URL') as Buffer, Buffer.alloc(2)]));
    expect((seen.unicodeUrl as Buffer).subarray(0, -2).toString('utf16le')).toBe('/app/café');
    expect(seen.unicodeHeader).toBe(ERROR_INVALID_INDEX);
    expect(seen.url).toEqual(Buffer.concat([model.lookup('URL') as Buffer, Buffer.from([0])]));

    expect(r.procResult).toBe(HSE_STATUS_SUCCESS);
    expect(r.status).toBe('200 OK');
    expect(r.headerBlock).toBe('Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n');
    expect(r.keepConn).toBe(false);
    expect(r.body.toString()).toBe('ok');
    expect(r.httpStatusCode).toBe(201);
    expect(r.logData).toBe('gsv-ok café');
    expect(r.doneCount).toBe(0);
    expect(r.doneStatus).toBeNull();
    expect(r.procThread).not.toBe(seen.jsThread);
    expect(r.procThread).toBeGreaterThan(0);
  });

  test('100 KB POST echo: PENDING, finished from setImmediate with async WriteClient chunks, then DONE_WITH_SESSION', async () => {
    const body = pattern(100 * 1024, 1);
    const model = new RequestModel({ method: 'POST', url: '/echo?x=1', headers: { 'X-Req-Id': 'big' }, body });
    const r = await host.execute(model, echoProc('async'), { asyncDelayUs: 2000 });
    noViolations(r);
    expect(r.procResult).toBe(HSE_STATUS_PENDING);
    expect(r.status).toBe('200 OK');
    expect(r.headerBlock).toBe(`Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\nX-Req-Id: big\r\n\r\n`);
    expect(r.keepConn).toBe(true);
    expect(r.body.equals(body)).toBe(true);
    expect(r.bodyBytesRead).toBe(body.length);
    expect(r.doneCount).toBe(1);
    expect(r.doneStatus).toBe(HSE_STATUS_SUCCESS_AND_KEEP_CONN);
    expect(r.completions).toBe(4); // 4 × 25 KiB
    expect(r.completionThread).not.toBe(hostThreadId());
    expect(r.completionThread).not.toBe(0);
    expect(r.httpStatusCode).toBe(200);
    expect(r.logData).toBe('async big');
  });

  test('200 requests from 8 host pthreads, sync and async procs mixed, byte-exact', async () => {
    const models: RequestModel[] = [];
    const bodies: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      const body = pattern((i * 7919) % 120000, i);
      bodies.push(body);
      models.push(
        new RequestModel({ method: 'POST', url: `/many/${i}`, headers: { 'X-Req-Id': String(i), 'X-Mode': i % 2 ? 'async' : 'sync' }, body }),
      );
    }
    const started = Date.now();
    const results = await host.executeMany(models, echoProc('header', 16384), { threads: 8, asyncDelayUs: 200, ioThreads: 4 });
    const elapsed = Date.now() - started;
    const mainThread = hostThreadId();
    const threads = new Set<number>();
    results.forEach((r, i) => {
      noViolations(r);
      expect(r.procResult).toBe(i % 2 ? HSE_STATUS_PENDING : HSE_STATUS_SUCCESS);
      expect(r.doneCount).toBe(i % 2 ? 1 : 0);
      expect(r.status).toBe('200 OK');
      expect(r.headerBlock).toContain(`\r\nX-Req-Id: ${i}\r\n`);
      expect(r.body.equals(bodies[i] as Buffer)).toBe(true);
      expect(r.logData).toBe(`${i % 2 ? 'async' : 'sync'} ${i}`);
      expect(r.procThread).not.toBe(mainThread);
      threads.add(r.procWorker);
    });
    expect(threads.size).toBeGreaterThan(1);
    expect(new Set(results.map((r) => r.ecbAddress)).size).toBe(200);
    expect(elapsed).toBeLessThan(20000);
  });

  test('closed loop: a host thread waits for its session end; issue and end timestamps are on process.hrtime clock', async () => {
    const THREADS = 3;
    const models = Array.from({ length: 24 }, (_, i) => new RequestModel({ url: `/loop/${i}` }));
    // Every session ends 3 ms after the call, from a timer: PENDING, then DONE.
    const proc = (p: bigint): number => {
      setTimeout(() => new RawEcb(p).done(HSE_STATUS_SUCCESS), 3);
      return HSE_STATUS_PENDING;
    };
    const peak = (rs: CHostResult[]): number => {
      const events = rs.flatMap((r) => [[r.issuedNs, 1], [r.endedNs, -1]] as [number, number][]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      let now = 0;
      let max = 0;
      for (const [, d] of events) max = Math.max(max, (now += d));
      return max;
    };
    const t0 = Number(process.hrtime.bigint());
    const closed = await host.executeMany(models, proc, { threads: THREADS, closedLoop: true });
    const t1 = Number(process.hrtime.bigint());
    for (const r of closed) {
      noViolations(r);
      expect(r.doneCount).toBe(1);
      expect(r.issuedNs).toBeGreaterThanOrEqual(t0);
      expect(r.endedNs).toBeLessThanOrEqual(t1);
      expect(r.endedNs).toBeGreaterThan(r.issuedNs);
    }
    // Per host thread, each request is issued only after the previous one's session ended.
    for (let w = 0; w < THREADS; w++) {
      const mine = closed.filter((r) => r.procWorker === w).sort((a, b) => a.issuedNs - b.issuedNs);
      for (let i = 1; i < mine.length; i++) expect(mine[i]!.issuedNs).toBeGreaterThanOrEqual(mine[i - 1]!.endedNs);
    }
    expect(peak(closed)).toBeLessThanOrEqual(THREADS);
    // Open loop (the default): threads move on at PENDING, so far more sessions are open at once.
    const open = await host.executeMany(models.map((_, i) => new RequestModel({ url: `/open/${i}` })), proc, { threads: THREADS });
    open.forEach(noViolations);
    expect(peak(open)).toBeGreaterThan(THREADS);
  });

  test('rule violations: headers twice, async overlap, DONE twice, use after DONE', async () => {
    const model = new RequestModel({ method: 'GET', url: '/rules' });
    const seen: Record<string, CallResult> = {};
    const r = await host.execute(model, (p) => {
      const ecb = new RawEcb(p);
      seen.headers1 = ecb.sendHeaders('200 OK', 'Content-Length: 5\r\n\r\n', true);
      seen.headers2 = ecb.sendHeaders('500 Oops', '\r\n', false);
      setImmediate(() => {
        try {
          writeAsync(ecb, Buffer.from('first'), () => {
            seen.done1 = ecb.done(HSE_STATUS_SUCCESS);
            seen.done2 = ecb.done(HSE_STATUS_SUCCESS);
            seen.after = ecb.write(Buffer.from('late'));
            seen.afterGsv = ecb.gsv('URL', Buffer.alloc(64), new Uint32Array([64]));
          });
          // A second async op while the first is outstanding (no new registration, so ctx stays the first's).
          seen.overlap = ecb.write(Buffer.from('second'), HSE_IO_ASYNC);
          seen.overlapSync = ecb.write(Buffer.from('third'));
        } catch (err) {
          asyncErrors.push(err);
        }
      });
      return HSE_STATUS_PENDING;
    }, { asyncDelayUs: 20000 });
    expect(seen.headers1).toMatchObject({ ok: 1 });
    expect(seen.headers2).toEqual({ ok: 0, errno: ERROR_INVALID_PARAMETER });
    expect(seen.overlap).toMatchObject({ ok: 0, errno: ERROR_INVALID_PARAMETER });
    expect(seen.overlapSync).toMatchObject({ ok: 0, errno: ERROR_INVALID_PARAMETER });
    expect(seen.done1).toMatchObject({ ok: 1 });
    expect(seen.done2).toEqual({ ok: 0, errno: ERROR_INVALID_HANDLE });
    expect(seen.after).toMatchObject({ ok: 0, errno: ERROR_INVALID_HANDLE });
    expect(seen.afterGsv).toEqual({ ok: 0, errno: ERROR_INVALID_HANDLE });
    expect(r.violations).toEqual({ useAfterDone: 2, asyncOverlap: 2, headersTwice: 1, doneTwice: 1 });
    expect(r.status).toBe('200 OK');
    expect(r.keepConn).toBe(true);
    expect(r.body.toString()).toBe('first');
    expect(r.doneCount).toBe(2);
    expect(r.doneStatus).toBe(HSE_STATUS_SUCCESS);
  });

  test('ServerSupportFunction: keep-conn, connected, flush flag, unhealthy, log parameter, redirect, unknown', async () => {
    const model = new RequestModel({ method: 'GET', url: '/ssf' });
    const seen: Record<string, unknown> = {};
    const r = await host.execute(model, (p) => {
      const ecb = new RawEcb(p);
      const keep = new Int32Array([-7]);
      seen.keep = { ...ecb.ssf(HSE_REQ_IS_KEEP_CONN, keep), value: keep[0] };
      const connected = new Int32Array([-7]);
      seen.connected = { ...ecb.ssf(HSE_REQ_IS_CONNECTED, connected), value: connected[0] };
      seen.keepNull = ecb.ssf(HSE_REQ_IS_KEEP_CONN, null);
      seen.flush = ecb.ssf(HSE_REQ_SET_FLUSH_FLAG, 1n);
      seen.unhealthy = ecb.ssf(HSE_REQ_REPORT_UNHEALTHY, Buffer.from('disk full\0'));
      seen.log = ecb.ssf(HSE_APPEND_LOG_PARAMETER, Buffer.from('a=1&b=2\0'), new Uint32Array([7]));
      seen.redirect = ecb.ssf(HSE_REQ_SEND_URL_REDIRECT_RESP, Buffer.from('http://example.test/next\0'));
      seen.unknown = ecb.ssf(9999, null);
      seen.asyncReadWithoutCompletion = ecb.ssf(HSE_REQ_ASYNC_READ_CLIENT, Buffer.alloc(16), new Uint32Array([16]), new Uint32Array([HSE_IO_ASYNC]));
      return HSE_STATUS_SUCCESS;
    }, { keepConn: true });
    noViolations(r);
    expect(seen.keep).toEqual({ ok: 1, errno: expect.any(Number), value: 1 });
    expect(seen.connected).toEqual({ ok: 1, errno: expect.any(Number), value: 1 });
    expect(seen.keepNull).toEqual({ ok: 0, errno: ERROR_INVALID_PARAMETER });
    expect(seen.unknown).toEqual({ ok: 0, errno: ERROR_INVALID_PARAMETER });
    expect(seen.asyncReadWithoutCompletion).toEqual({ ok: 0, errno: ERROR_INVALID_PARAMETER });
    expect(r.flushFlag).toBe(true);
    expect(r.unhealthy).toEqual(['disk full']);
    expect(r.logParameters).toEqual(['a=1&b=2']);
    expect(r.redirect).toBe('http://example.test/next');
    expect(r.status).toBeNull();
    expect(r.headerBlock).toBeNull();
    expect(r.keepConn).toBeNull();
  });

  test('unknown-length body read with ASYNC_READ_CLIENT until cbIO 0', async () => {
    const parts = [pattern(30000, 3), pattern(40000, 4), pattern(5, 5)];
    const expected = Buffer.concat(parts);
    const model = new RequestModel({
      method: 'POST',
      url: '/chunked',
      unknownLength: true,
      readAhead: 1000,
      body: (async function* () {
        yield* parts;
      })(),
    });
    const seen: { total?: number; got?: Buffer } = {};
    const r = await host.execute(model, (p) => {
      const ecb = new RawEcb(p);
      seen.total = ecb.u32(OFF.cbTotalBytes);
      const got = [ecb.readAhead()];
      const readNext = (): void => {
        const buf = Buffer.alloc(8192);
        registerIo(ecb, buf, (cbIO, error) => {
          if (error !== 0) asyncErrors.push(new Error(`read error ${error}`));
          if (cbIO === 0) {
            seen.got = Buffer.concat(got);
            ecb.sendHeaders('204 No Content', '\r\n', true);
            ecb.done(HSE_STATUS_SUCCESS);
            return;
          }
          got.push(Buffer.from(buf.subarray(0, cbIO)));
          readNext();
        });
        const rc = ecb.ssf(HSE_REQ_ASYNC_READ_CLIENT, buf, new Uint32Array([buf.length]), new Uint32Array([HSE_IO_ASYNC]));
        if (!rc.ok) asyncErrors.push(new Error(`ASYNC_READ_CLIENT failed with ${rc.errno}`));
      };
      readNext();
      return HSE_STATUS_PENDING;
    });
    noViolations(r);
    expect(seen.total).toBe(0xffffffff);
    expect(seen.got?.equals(expected)).toBe(true);
    expect(r.bodyBytesRead).toBe(expected.length);
    expect(r.status).toBe('204 No Content');
  });

  test('CLOSE_CONNECTION completes a pending async read with ERROR_NETNAME_DELETED; client abort ends ReadClient', async () => {
    const closing = new RequestModel({ method: 'POST', url: '/close', body: pattern(60000, 6), readAhead: 0 });
    const seen: Record<string, unknown> = {};
    const started = Date.now();
    const r = await host.execute(closing, (p) => {
      const ecb = new RawEcb(p);
      const buf = Buffer.alloc(4096);
      registerIo(ecb, buf, (cbIO, error) => {
        seen.completion = { cbIO, error, after: Date.now() - started };
        seen.writeAfterClose = ecb.write(Buffer.from('x'));
        ecb.done(null);
      });
      ecb.ssf(HSE_REQ_ASYNC_READ_CLIENT, buf, new Uint32Array([buf.length]), new Uint32Array([HSE_IO_ASYNC]));
      seen.close = ecb.ssf(HSE_REQ_CLOSE_CONNECTION);
      return HSE_STATUS_PENDING;
    }, { asyncDelayUs: 5_000_000 });
    noViolations(r);
    expect(seen.close).toMatchObject({ ok: 1 });
    expect(seen.completion).toEqual({ cbIO: 0, error: ERROR_NETNAME_DELETED, after: expect.any(Number) });
    expect((seen.completion as { after: number }).after).toBeLessThan(4000);
    expect(seen.writeAfterClose).toMatchObject({ ok: 0, errno: ERROR_NETNAME_DELETED });
    expect(r.closedConnection).toBe(true);
    expect(r.doneCount).toBe(1);
    expect(r.doneStatus).toBeNull();

    const aborting = new RequestModel({ method: 'POST', url: '/abort', body: pattern(100000, 7), abortAfterBytes: 60000 });
    const abortSeen: Record<string, unknown> = {};
    const a = await host.execute(aborting, (p) => {
      const ecb = new RawEcb(p);
      abortSeen.body = ecb.readBody().length;
      const connected = new Int32Array([-1]);
      ecb.ssf(HSE_REQ_IS_CONNECTED, connected);
      abortSeen.connected = connected[0];
      return HSE_STATUS_SUCCESS;
    });
    noViolations(a);
    expect(abortSeen).toEqual({ body: 60000, connected: 0 });
    expect(a.bodyBytesRead).toBe(60000);
  });

  test('a proc that never calls DONE times out; an exception in a JS proc becomes HSE_STATUS_ERROR', async () => {
    const t = await host.execute(new RequestModel({ url: '/hang' }), () => HSE_STATUS_PENDING, { timeoutMs: 150 });
    expect(t.timedOut).toBe(true);
    expect(t.procResult).toBe(HSE_STATUS_PENDING);
    expect(t.doneCount).toBe(0);

    const e = await host.execute(new RequestModel({ url: '/throw' }), () => {
      throw new Error('boom');
    });
    expect(e.procResult).toBe(HSE_STATUS_ERROR);
    expect((e.procError as Error).message).toBe('boom');
    expect(e.timedOut).toBe(false);
  });

  test('parallel execute() calls whose procs need the libuv pool (fs.promises) do not starve it', async () => {
    const proc = (p: bigint): number => {
      const ecb = new RawEcb(p);
      void fs.promises
        .stat(__filename)
        .then((st) => {
          const text = Buffer.from(String(st.isFile()));
          ecb.sendHeaders('200 OK', `Content-Length: ${text.length}\r\n\r\n`, true);
          ecb.write(text);
          ecb.done(HSE_STATUS_SUCCESS);
        })
        .catch((err: unknown) => asyncErrors.push(err));
      return HSE_STATUS_PENDING;
    };
    const runs = Array.from({ length: 6 }, (_, i) => host.execute(new RequestModel({ url: `/fs/${i}` }), proc, { timeoutMs: 10000 }));
    const results = await Promise.all(runs);
    for (const r of results) {
      noViolations(r);
      expect(r.body.toString()).toBe('true');
      expect(r.doneCount).toBe(1);
    }
  });

  test('kill switches: client dropped mid-response (sync 64, async 995, partial delivery), GetServerVariable failing with 87', async () => {
    const seen: Record<string, unknown> = {};
    const sync = await host.execute(new RequestModel({ url: '/drop-sync', headers: { 'X-Req-Id': 's' } }), (p) => {
      const ecb = new RawEcb(p);
      seen.failVar = ecb.gsv('HEADER_X-Req-Id', Buffer.alloc(64), new Uint32Array([64]));
      seen.otherVar = ecb.variable('URL');
      seen.headers = ecb.sendHeaders('200 OK', 'Content-Length: 300\r\n\r\n', true);
      seen.first = ecb.write(Buffer.alloc(100, 1));
      seen.crossing = ecb.write(Buffer.alloc(100, 2));
      seen.after = ecb.write(Buffer.alloc(10, 3));
      const connected = new Int32Array([-1]);
      ecb.ssf(HSE_REQ_IS_CONNECTED, connected);
      seen.connected = connected[0];
      return HSE_STATUS_ERROR;
    }, { dropAfterBytes: 150, failVariable: 'header_x-req-id' });
    noViolations(sync);
    expect(seen.failVar).toEqual({ ok: 0, errno: ERROR_INVALID_PARAMETER });
    expect(Buffer.isBuffer(seen.otherVar)).toBe(true);
    expect(seen.headers).toMatchObject({ ok: 1 });
    expect(seen.first).toMatchObject({ ok: 1 });
    expect(seen.crossing).toMatchObject({ ok: 0, errno: ERROR_NETNAME_DELETED });
    expect(seen.after).toMatchObject({ ok: 0, errno: ERROR_NETNAME_DELETED });
    expect(seen.connected).toBe(0);
    expect(sync.clientDropped).toBe(true);
    expect(sync.body).toEqual(Buffer.concat([Buffer.alloc(100, 1), Buffer.alloc(50, 2)]));

    const completions: [number, number][] = [];
    const async = await host.execute(new RequestModel({ url: '/drop-async' }), (p) => {
      const ecb = new RawEcb(p);
      ecb.sendHeaders('200 OK', 'Content-Length: 300\r\n\r\n', true);
      const chunks = [Buffer.alloc(100, 1), Buffer.alloc(100, 2), Buffer.alloc(100, 3)];
      const next = (): void => {
        const chunk = chunks.shift();
        if (!chunk) return void ecb.done(HSE_STATUS_SUCCESS);
        writeAsync(ecb, chunk, (cbIO, error) => {
          completions.push([cbIO, error]);
          if (error !== 0) {
            seen.writeAfterDrop = ecb.write(Buffer.alloc(1), HSE_IO_ASYNC);
            ecb.done(HSE_STATUS_ERROR);
            return;
          }
          next();
        });
      };
      next();
      return HSE_STATUS_PENDING;
    }, { dropAfterBytes: 150, asyncDelayUs: 1000 });
    noViolations(async);
    expect(completions).toEqual([[100, 0], [50, ERROR_OPERATION_ABORTED]]);
    expect(seen.writeAfterDrop).toMatchObject({ ok: 0, errno: ERROR_NETNAME_DELETED });
    expect(async.body.length).toBe(150);
    expect(async.doneStatus).toBe(HSE_STATUS_ERROR);
    expect(async.doneCount).toBe(1);
    expect(async.clientDropped).toBe(true);
  });

  test('a missing C compiler is a clear error, never a silent skip', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'isapihost-'));
    try {
      expect(() => compileHost(path.join(dir, 'no-such-cc'), dir)).toThrow(/the C reference host needs a C compiler: `.*no-such-cc` was not found; install gcc/);
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
