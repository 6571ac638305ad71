'use strict';
/**
 * The C reference host (test/native/host.c, cross-compiled by mingw-w64 as a Windows DLL) drives
 * createExtension(...).nativeEntryPoints() from Windows threads (CreateThread), through SimpleHandler (the CJS
 * build) and ThreadPoolHandler (the ESM build: the CJS build cannot load an app module in its workers, see
 * docs/windows.md L1). Covered: GetExtensionVersion / TerminateExtension from host threads through the loader
 * gate; GetServerVariable's retry and the Win32 codes our JS reads with kernel32's GetLastError, on the main thread
 * and in workers; UNICODE_* variables as UTF-16LE; async ReadClient / WriteClient completions from host I/O
 * threads; DONE_WITH_SESSION exactly once; 1,000 requests from 8 host threads, byte-exact, per handler.
 */
const crypto = require('node:crypto');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { test, assert, equal, setup, main } = require('./harness.cjs');

// host.c's result selectors (host_result_bytes / host_result_int), as in test/native/c-host.ts.
const RB = { STATUS: 0, HEADERS: 1, BODY: 2, LOG_DATA: 3 };
const RI = { KEEP_CONN: 0, HTTP_STATUS: 1, DONE_STATUS: 2, DONE_COUNT: 3, PROC_RESULT: 4, V_USE_AFTER_DONE: 7, V_ASYNC_OVERLAP: 8, V_HEADERS_TWICE: 9, V_DONE_TWICE: 10, TIMED_OUT: 11, PROC_TID: 12, COMPLETION_TID: 14, COMPLETIONS: 15, BODY_READ: 16, REFUSED: 17 };
const TR = { DRAINED: 0, TERM_CALLED: 1, TERM_RESULT: 2, COUNT: 9 };
const FAIL_VAR = 'HTTP_X_FAIL';
const FAIL_CODE = 1450; // ERROR_NO_SYSTEM_RESOURCES: any code the library could not guess
const BIG = 'b'.repeat(4990) + '0123456789'; // 5000 bytes: above the library's 1024-byte first try
const UNICODE_PATH = '/probe/caf\u00e9/\u65e5\u672c/\u{1F600}';
const UNICODE_URL = `${encodeURI(UNICODE_PATH)}?x=1`;

function loadHost(koffi, dll) {
  const lib = koffi.load(dll);
  const f = (decl) => lib.func(decl);
  return {
    request_new: f('void *host_request_new(void)'),
    request_set_field: f('int host_request_set_field(void *req, uint32_t which, const uint8_t *bytes, uint32_t len)'),
    request_add_var: f('int host_request_add_var(void *req, const char *name, const uint8_t *value, uint32_t len, int32_t no_data)'),
    request_set_body: f('int host_request_set_body(void *req, const uint8_t *data, uint32_t len, uint32_t total_bytes, uint32_t read_ahead)'),
    request_set_options: f('int host_request_set_options(void *req, int32_t keep_conn, uint32_t async_delay_us, uint32_t timeout_ms, int64_t abort_after)'),
    request_set_faults: f('int host_request_set_faults(void *req, int64_t drop_after, const char *fail_var, uint32_t fail_var_error)'),
    request_ecb: f('void *host_request_ecb(void *req)'),
    request_free: f('void host_request_free(void *req)'),
    run_ex: f('int32_t host_run_ex(void *gate, void *proc, void *reqs, uint32_t n, uint32_t threads, uint32_t io_threads, uint32_t interval_us)'),
    gate_new: f('void *host_gate_new(uint32_t max_js_calls, int32_t accepting)'),
    gate_free: f('void host_gate_free(void *gate)'),
    start_extension: f('int32_t host_start_extension(void *gate, void *gev, void *version, void *desc, uint32_t desc_len)'),
    terminate: f('int32_t host_terminate(void *gate, void *term_fn, uint32_t flags, uint32_t timeout_ms, void *out, uint32_t n)'),
    result_bytes: f('void *host_result_bytes(void *req, uint32_t which, _Out_ uint32_t *len)'),
    result_int: f('int64_t host_result_int(void *req, uint32_t which)'),
    last_error: f('uint32_t host_last_error(void)'),
    thread_id: f('uint64_t host_thread_id(void)'),
    ecb_layout: f('uint32_t host_ecb_layout(_Out_ uint32_t *out, uint32_t n)'),
    pinned: f('int32_t host_pinned(void)'),
  };
}

const callAsync = (fn, ...args) =>
  new Promise((resolve, reject) => fn.async(...args, (err, value) => (err ? reject(err) : resolve(value))));

main(async () => {
  const { run, requireStaged, internals, koffi, fixture } = setup('host');
  const arch = process.arch === 'x64' ? 'x64' : 'ia32';
  const abi = internals.getAbi();
  const cjs = requireStaged('isapi-http');
  const esm = await import(pathToFileURL(requireStaged.resolve('isapi-http').replace(/index\.cjs$/, 'index.js')).href);
  const { RequestModel } = requireStaged('isapi-http/testing');
  const host = loadHost(koffi, path.join(run, `isapihost-${arch}.dll`));
  const appPath = path.join(__dirname, 'lane-app.cjs');
  const app = require(appPath);
  const mainTid = Number(host.thread_id());
  const errors = [];
  const onError = (error) => errors.push(String((error && error.stack) || error));

  // ── the driver (a small subset of test/native/c-host.ts) ─────────────────────────────────────────────
  const ansi = (s) => Buffer.from(s, 'latin1');
  function variableTable(model) {
    const seen = new Set();
    const table = [];
    const add = (name) => {
      if (seen.has(name.toUpperCase())) return;
      seen.add(name.toUpperCase());
      const value = model.lookup(name);
      if (value !== undefined) table.push([name, value]);
    };
    for (const name of model.variableNames()) {
      add(name);
      if (!/^(HTTP_|HEADER_|ALL_)/i.test(name)) add(`UNICODE_${name}`);
    }
    for (const [header] of model.headers) {
      add(`HTTP_${header.toUpperCase().replace(/-/g, '_')}`);
      add(`HEADER_${header}`);
    }
    return table;
  }

  async function build(desc, opts) {
    const model = new RequestModel(desc);
    const body = await model.body.readAll();
    const req = host.request_new();
    assert(req !== null, 'host_request_new returned NULL');
    const ok = (rc, what) => assert(rc === 0, `${what} failed`);
    const fields = [model.method, model.queryString, model.path, model.pathTranslated, model.contentType];
    fields.forEach((text, which) => {
      const b = ansi(text);
      ok(host.request_set_field(req, which, b, b.length), 'host_request_set_field');
    });
    for (const [name, value] of variableTable(model)) {
      ok(host.request_add_var(req, name, value, value === null ? 0 : value.length, value === null ? 1 : 0), 'host_request_add_var');
    }
    ok(host.request_set_body(req, body, body.length, model.totalBytes, model.readAheadSize), 'host_request_set_body');
    ok(host.request_set_options(req, 0, opts.asyncDelayUs ?? 0, opts.timeoutMs ?? 30000, -1), 'host_request_set_options');
    if (opts.failVar) ok(host.request_set_faults(req, -1, opts.failVar, opts.failCode), 'host_request_set_faults');
    return { req, body };
  }

  function bytes(req, which) {
    const len = new Uint32Array(1);
    const p = host.result_bytes(req, which, len);
    if (p === null) return null;
    return len[0] === 0 ? Buffer.alloc(0) : Buffer.from(new Uint8Array(koffi.view(p, len[0])));
  }

  function collect(req) {
    const int = (which) => Number(host.result_int(req, which));
    return {
      status: bytes(req, RB.STATUS)?.toString('latin1') ?? null,
      headers: bytes(req, RB.HEADERS)?.toString('latin1') ?? '',
      body: bytes(req, RB.BODY) ?? Buffer.alloc(0),
      logData: bytes(req, RB.LOG_DATA)?.toString('utf8') ?? '',
      httpStatus: int(RI.HTTP_STATUS),
      doneCount: int(RI.DONE_COUNT),
      doneStatus: int(RI.DONE_STATUS),
      procResult: int(RI.PROC_RESULT),
      violations: [RI.V_USE_AFTER_DONE, RI.V_ASYNC_OVERLAP, RI.V_HEADERS_TWICE, RI.V_DONE_TWICE].map(int),
      timedOut: int(RI.TIMED_OUT),
      procTid: int(RI.PROC_TID),
      completionTid: int(RI.COMPLETION_TID),
      completions: int(RI.COMPLETIONS),
      bodyRead: int(RI.BODY_READ),
      refused: int(RI.REFUSED),
    };
  }

  /** Run descriptions through `proc` from `threads` host threads (CreateThread) with `gate` (or none). */
  async function runMany(descs, proc, { gate = null, threads = 8, ioThreads = 2, ...opts } = {}) {
    const built = [];
    for (const d of descs) built.push(await build(d, opts));
    const reqs = built.map((b) => b.req);
    // An array of pointers: 8 bytes each on x64, 4 on ia32 (c-host.ts's BigUint64Array is x64-only).
    const handles = abi.pointerSize === 8 ? new BigUint64Array(reqs.map((r) => BigInt(r))) : new Uint32Array(reqs.map((r) => Number(r)));
    try {
      const timeouts = await callAsync(host.run_ex, gate, proc, handles, reqs.length, threads, ioThreads, 0);
      assert(timeouts >= 0, `host_run_ex refused the requests (${timeouts})`);
      return built.map((b) => ({ ...collect(b.req), sent: b.body }));
    } finally {
      for (const r of reqs) host.request_free(r);
    }
  }

  function expectClean(results, what) {
    results.forEach((r, i) => {
      const where = `${what} request ${i}`;
      equal(r.timedOut, 0, `${where}: timed out`);
      equal(r.doneCount, 1, `${where}: DONE_WITH_SESSION count`);
      equal(r.procResult, 3, `${where}: HttpExtensionProc result (HSE_STATUS_PENDING)`);
      equal(r.violations.join(','), '0,0,0,0', `${where}: host rule violations (use-after-done, overlap, headers twice, done twice)`);
      equal(r.refused, 0, `${where}: refused by the gate`);
    });
  }

  const echoDesc = (i, size) => {
    const body = crypto.createHash('sha512').update(`body-${i}`).digest();
    const full = Buffer.alloc(size);
    for (let o = 0; o < size; o += body.length) body.copy(full, o);
    return { method: 'POST', url: `/echo/${i}?n=${i}`, headers: { 'Content-Type': 'application/octet-stream' }, body: full };
  };
  const probeDesc = () => ({ method: 'GET', url: UNICODE_URL, headers: { 'X-Big': BIG } });

  function checkProbe(r, where, wantMain) {
    equal(r.status, '200 OK', `${where}: status`);
    const p = JSON.parse(r.body.toString('utf8'));
    equal(p.isMainThread, wantMain, `${where}: served on the main thread`);
    equal(p.unicodeUrl, UNICODE_PATH, `${where}: UNICODE_URL decoded`);
    equal(p.unicodeHex, Buffer.from(UNICODE_PATH, 'utf16le').toString('hex'), `${where}: UNICODE_URL bytes (UTF-16LE, terminator excluded)`);
    equal(p.bigLength, BIG.length, `${where}: 5000-byte variable length`);
    equal(p.bigSha256, crypto.createHash('sha256').update(BIG).digest('hex'), `${where}: 5000-byte variable content`);
    equal(JSON.stringify(p.missing), JSON.stringify({ ok: false, error: 1413 }), `${where}: unknown variable -> ERROR_INVALID_INDEX`);
    equal(JSON.stringify(p.failing), JSON.stringify({ ok: false, error: FAIL_CODE }), `${where}: failing variable -> its code`);
    equal(p.raw.ret, 0, `${where}: raw GetServerVariable with 8 bytes returns FALSE`);
    equal(p.raw.need, BIG.length + 1, `${where}: raw GetServerVariable *lpdwSize`);
    equal(p.raw.lastError, 122, `${where}: GetLastError after the raw call (ERROR_INSUFFICIENT_BUFFER)`);
    return p;
  }

  // ── tests ──────────────────────────────────────────────────────────────────────────────────────────
  test(`the ${arch} DLL loads, pinned itself, and mingw's ECB layout equals the fixture and koffi`, () => {
    equal(host.pinned(), 1, 'host_pinned (GetModuleHandleExW PIN in DllMain)');
    const out = new Uint32Array(18);
    equal(host.ecb_layout(out, out.length), 18, 'host_ecb_layout count');
    const want = fixture[arch].EXTENSION_CONTROL_BLOCK;
    equal(out[0], want.size, 'sizeof(ECB) in C');
    want.fields.forEach((f, i) => {
      equal(out[i + 1], f.offset, `C offsetof(ECB, ${f.name})`);
      equal(abi.offsets.EXTENSION_CONTROL_BLOCK[f.name], f.offset, `koffi offsetof(ECB, ${f.name})`);
    });
    return `sizeof(ECB) = ${out[0]}; 17 offsets equal`;
  });

  test('GetServerVariable from JS on the JS thread: FALSE + *lpdwSize + GetLastError 122 / 1413 / fail code (kernel32)', async () => {
    const seen = [];
    const proc = koffi.register((pEcb) => {
      try {
        const off = abi.offsets.EXTENSION_CONTROL_BLOCK;
        const conn = koffi.decode(pEcb, off.ConnID, 'void *');
        const gsv = koffi.decode(koffi.decode(pEcb, off.GetServerVariable, 'void *'), abi.protos.GetServerVariable);
        for (const [name, size] of [['HTTP_X_BIG', 8], ['NO_SUCH_VARIABLE', 64], [FAIL_VAR, 64], ['HTTP_X_BIG', 8192]]) {
          const buf = Buffer.alloc(size);
          const cell = new Uint32Array([size]);
          const ret = gsv(conn, name, buf, cell);
          seen.push({ name, ret, need: cell[0], lastError: internals.lastError().get(), errno: koffi.errno(), hostTls: host.last_error(), tid: Number(host.thread_id()) });
        }
      } catch (error) {
        seen.push({ error: String(error) });
      }
      return 1; // HSE_STATUS_SUCCESS: the host ends the session
    }, koffi.pointer(abi.protos.HttpExtensionProc));
    try {
      const [r] = await runMany([{ url: '/raw', headers: { 'X-Big': BIG } }], proc, { threads: 1, failVar: FAIL_VAR, failCode: FAIL_CODE });
      equal(r.timedOut, 0, 'timed out');
      assert(r.procTid !== mainTid, 'the host called the proc from its own thread');
    } finally {
      koffi.unregister(proc);
    }
    assert(!seen.some((s) => s.error), () => `proc threw: ${JSON.stringify(seen)}`);
    const [small, missing, failing, fits] = seen;
    equal(small.ret, 0, 'small buffer: returns FALSE');
    equal(small.need, BIG.length + 1, 'small buffer: *lpdwSize = the size needed');
    equal(small.lastError, 122, 'small buffer: lastError().get() (kernel32 GetLastError)');
    equal(missing.lastError, 1413, 'unknown variable: lastError().get()');
    equal(failing.lastError, FAIL_CODE, 'failing variable: lastError().get()');
    equal(fits.ret, 1, 'big enough buffer: TRUE');
    equal(small.tid, mainTid, 'the ECB call ran on the JS main thread (koffi relayed the proc there)');
    equal(small.hostTls, 122, "the host's own thread-local on that thread");
    return `GetLastError: ${small.lastError}/${missing.lastError}/${failing.lastError}; koffi.errno() saw ${small.errno}/${missing.errno}/${failing.errno} (the DLL's msvcrt errno is not koffi's)`;
  });

  test('a JS host on the JS thread (inject native: EmulatedHost): SetLastError inside its koffi callbacks reaches NativeEcb', async () => {
    const { inject } = requireStaged('isapi-http/testing');
    const r = await inject(app, { url: UNICODE_URL, headers: { 'X-Big': BIG } }, { native: true });
    equal(r.statusCode, 200, 'status');
    const p = JSON.parse(r.body.toString('utf8'));
    equal(p.unicodeUrl, UNICODE_PATH, 'UNICODE_URL');
    equal(p.bigLength, BIG.length, '5000-byte variable');
    equal(p.missing.error, 1413, 'unknown variable: the code the JS callback set with kernel32 SetLastError');
    equal(p.failing.error, 1413, 'HTTP_X_FAIL is just unknown to EmulatedHost');
    equal(p.raw.lastError, 122, 'raw call with 8 bytes: GetLastError');
    return `codes ${p.missing.error}/${p.raw.lastError} survive koffi's callback return`;
  });

  test('ThreadPoolHandler from the CJS build (require("isapi-http")) loads the app module in its workers', async () => {
    const handler = new cjs.ThreadPoolHandler(pathToFileURL(appPath), { workers: 1, onError: () => {} });
    try {
      await handler.ready();
    } finally {
      await handler.terminate();
    }
    return 'worker ready';
  }, { timeoutMs: 30_000 });

  const kinds = [
    { kind: 'SimpleHandler', build: () => new cjs.SimpleHandler(app, { onError }), lib: cjs, main: true },
    { kind: 'ThreadPoolHandler', build: () => new esm.ThreadPoolHandler(pathToFileURL(appPath), { workers: 2, onError }), lib: esm, main: false },
  ];
  for (const k of kinds) {
    const state = {};
    test(`${k.kind}: GetExtensionVersion from a host thread through the loader gate`, async () => {
      state.handler = k.build();
      state.ext = k.lib.createExtension(state.handler, { description: 'isapi-http windows lane', onError });
      state.points = state.ext.nativeEntryPoints();
      state.gate = host.gate_new(64, 0);
      const version = new Uint32Array(1);
      const desc = Buffer.alloc(256);
      const rc = await callAsync(host.start_extension, state.gate, state.points.GetExtensionVersion, version, desc, desc.length);
      equal(rc, 1, 'GetExtensionVersion returned TRUE');
      equal(version[0], k.lib.HSE_VERSION, 'dwExtensionVersion');
      equal(desc.toString('latin1', 0, desc.indexOf(0)), 'isapi-http windows lane', 'lpszExtensionDesc');
      if (state.handler.ready) await state.handler.ready();
      return `version 0x${version[0].toString(16)}`;
    });

    test(`${k.kind}: probe on ${k.main ? 'the main thread' : 'a worker thread'}: UNICODE_URL as UTF-16, the 5000-byte variable's retry, Win32 codes via GetLastError`, async () => {
      const results = await runMany([probeDesc(), probeDesc()], state.points.HttpExtensionProc, { gate: state.gate, threads: 2, failVar: FAIL_VAR, failCode: FAIL_CODE });
      expectClean(results, 'probe');
      const p = checkProbe(results[0], 'probe 0', k.main);
      checkProbe(results[1], 'probe 1', k.main);
      return `thread ${p.threadId}; codes 1413/${FAIL_CODE}/122; koffi.errno() there: ${p.raw.errno}`;
    });

    test(`${k.kind}: 300 KB POST echo: async ReadClient + WriteClient completions from host I/O threads, DONE once`, async () => {
      const results = await runMany([echoDesc(0, 300 * 1024), echoDesc(1, 300 * 1024)], state.points.HttpExtensionProc, { gate: state.gate, threads: 2, asyncDelayUs: 2000 });
      expectClean(results, 'echo');
      for (const r of results) {
        equal(r.status, '200 OK', 'status');
        assert(r.body.equals(r.sent), `body differs: ${r.body.length} bytes back for ${r.sent.length}`);
        equal(r.bodyRead, r.sent.length, 'request body bytes the host delivered');
        assert(r.completions >= 2, `expected async completions, saw ${r.completions}`);
        assert(r.completionTid !== 0 && r.completionTid !== mainTid && r.completionTid !== r.procTid, `completion thread ${r.completionTid} is not a host I/O thread (main ${mainTid}, proc ${r.procTid})`);
      }
      return `completions ${results.map((r) => r.completions).join('/')} from host I/O thread ${results[0].completionTid}`;
    });

    test(`${k.kind}: 1,000 requests from 8 host threads, byte-exact`, async () => {
      const descs = Array.from({ length: 1000 }, (_, i) => echoDesc(i, 64 + ((i * 997) % 6000)));
      const t0 = Date.now();
      const results = await runMany(descs, state.points.HttpExtensionProc, { gate: state.gate, threads: 8, ioThreads: 4 });
      const ms = Date.now() - t0;
      expectClean(results, 'load');
      const threadsSeen = new Set();
      results.forEach((r, i) => {
        equal(r.status, '200 OK', `request ${i}: status`);
        assert(r.body.equals(r.sent), `request ${i}: body differs (${r.body.length} vs ${r.sent.length} bytes)`);
        assert(r.headers.includes(`X-Body-Sha256: ${crypto.createHash('sha256').update(r.sent).digest('hex')}`), `request ${i}: X-Body-Sha256 missing or wrong`);
        equal(r.httpStatus, 200, `request ${i}: dwHttpStatusCode`);
        threadsSeen.add(r.procTid);
        if (!k.main) assert(/X-Thread: worker-/.test(r.headers), `request ${i}: not served by a worker`);
      });
      assert(threadsSeen.size >= 2, `expected several host threads, saw ${threadsSeen.size}`);
      return `${results.length} OK in ${ms} ms (${Math.round((results.length * 1000) / ms)} req/s), ${threadsSeen.size} host threads`;
    }, { timeoutMs: 240_000 });

    test(`${k.kind}: TerminateExtension from a host thread after the drain, called once`, async () => {
      const out = new BigInt64Array(TR.COUNT);
      const rc = await callAsync(host.terminate, state.gate, state.points.TerminateExtension, 2, 30000, out, out.length);
      equal(rc, 0, 'host_terminate');
      equal(Number(out[TR.DRAINED]), 1, 'drained');
      equal(Number(out[TR.TERM_CALLED]), 1, 'TerminateExtension called');
      equal(Number(out[TR.TERM_RESULT]), 1, 'TerminateExtension returned TRUE');
      await state.ext.terminated;
      state.ext.dispose();
      host.gate_free(state.gate);
      equal(errors.length, 0, `errors reported by the extension: ${errors.join('\n')}`);
      return 'drained; terminated';
    });
  }
});
