'use strict';
/**
 * ia32 only: every callback the library hands to a native host must be __stdcall, i.e. pop its own arguments
 * (ISAPI.md §1, §13 item 4). stackcheck-ia32.dll (test/windows/stackcheck.c) calls a function pointer the way a
 * WINAPI caller does and reports ESP after minus ESP before: 0 for __stdcall, -4 x (argument count) for cdecl.
 *
 *  - the measure itself, on two native functions (a __stdcall one: 0; a cdecl one: -16);
 *  - every callback prototype of src/ecb/abi.ts (the three entry points, PFN_HSE_IO_COMPLETION and the *_raw
 *    host callbacks an emulated host registers), called on the JS thread and from a CreateThread thread
 *    (koffi's cross-thread relay): delta 0, arguments and return value intact;
 *  - the library's real registrations: createExtension(...).nativeEntryPoints() and the IO completion routine;
 *  - the NEGATIVE test: the same prototypes declared without __stdcall (cdecl) must be CAUGHT (delta -4n).
 *
 * ISAPI_WIN_SABOTAGE=cdecl makes the positive tests declare cdecl too: the lane must then fail (proof that it can).
 */
const path = require('node:path');
const { test, assert, equal, setup, main } = require('./harness.cjs');

const callAsync = (fn, ...args) =>
  new Promise((resolve, reject) => fn.async(...args, (err, value) => (err ? reject(err) : resolve(value))));

main(() => {
  const { run, requireStaged, internals, koffi, sabotage } = setup('stack');
  if (process.arch !== 'ia32') throw new Error('the stack suite is for ia32: x64 has one calling convention');
  const abi = internals.getAbi();
  const lib = koffi.load(path.join(run, 'stackcheck-ia32.dll'));
  const sc = {
    call: lib.func('int32_t sc_call(void *fn, const uint32_t *args, uint32_t n, _Out_ uint32_t *ret)'),
    callOnThread: lib.func('int32_t sc_call_on_thread(void *fn, void *args, uint32_t n, void *ret)'),
    stats: lib.func('void sc_stats(_Out_ int32_t *out)'),
  };

  /** The ESP delta of calling `fn` with `args`, here (same thread) or from a new Windows thread. */
  async function measure(fn, args, where) {
    const a = new Uint32Array(args);
    const ret = new Uint32Array(1);
    const delta = where === 'thread' ? await callAsync(sc.callOnThread, fn, a, a.length, ret) : sc.call(fn, a, a.length, ret);
    return { delta, ret: ret[0] };
  }

  const nativeAddress = (name) => {
    // A native export's address, to call it through sc_call like any function pointer.
    const k32 = koffi.load('kernel32.dll');
    const GetProcAddress = k32.func('void * __stdcall GetProcAddress(void *module, const char *name)');
    const GetModuleHandleA = k32.func('void * __stdcall GetModuleHandleA(const char *name)');
    const p = GetProcAddress(GetModuleHandleA('stackcheck-ia32.dll'), name);
    assert(p !== null, `GetProcAddress(${name}) failed`);
    return p;
  };

  test('the measure: a native __stdcall function pops 16 bytes (delta 0), a cdecl one does not (delta -16)', async () => {
    const s = await measure(nativeAddress('sc_native_stdcall4'), [1, 2, 3, 4], 'here');
    const c = await measure(nativeAddress('sc_native_cdecl4'), [1, 2, 3, 4], 'here');
    equal(s.delta, 0, '__stdcall delta');
    equal(s.ret, 10, '__stdcall result');
    equal(c.delta, -16, 'cdecl delta');
    equal(c.ret, 10, 'cdecl result');
    return `stdcall ${s.delta}, cdecl ${c.delta}`;
  });

  // Prototypes the library registers as callbacks (a native host calls them): name -> argument count.
  const CALLBACKS = {
    HttpExtensionProc: 1,
    GetExtensionVersion: 1,
    TerminateExtension: 1,
    PFN_HSE_IO_COMPLETION: 4,
    GetServerVariable_raw: 4,
    WriteClient_raw: 4,
    ReadClient_raw: 3,
    ServerSupportFunction_raw: 5,
  };
  const cdecl = new Map();
  const cdeclOf = (name) => {
    // The library's prototype string without __stdcall, declared once (koffi type names are per thread).
    if (!cdecl.has(name)) cdecl.set(name, koffi.proto(internals.PROTO_SIGNATURES[name].replace('__stdcall ', '').replace(`${name}(`, `${name}_cdecl(`)));
    return cdecl.get(name);
  };
  const protoFor = (name, wantCdecl) => (wantCdecl ? cdeclOf(name) : abi.protos[name]);
  const toU32 = (v) => (v === null ? 0 : Number(BigInt.asUintN(32, BigInt(v))));

  for (const [name, n] of Object.entries(CALLBACKS)) {
    test(`${name} (${n} args) as the library declares it: ESP delta 0 on the JS thread and from a Windows thread`, async () => {
      const args = Array.from({ length: n }, (_, i) => 0x10101010 * (i + 1));
      const seen = [];
      const cb = koffi.register((...a) => {
        seen.push(a.map(toU32));
        return name === 'PFN_HSE_IO_COMPLETION' ? undefined : 0x5a5a;
      }, koffi.pointer(protoFor(name, sabotage === 'cdecl')));
      try {
        const here = await measure(cb, args, 'here');
        const there = await measure(cb, args, 'thread');
        equal(seen.length, 2, 'callback invocations');
        for (const s of seen) equal(s.join(','), args.join(','), 'arguments received');
        equal(here.delta, 0, 'ESP delta, same thread');
        equal(there.delta, 0, 'ESP delta, CreateThread thread (relayed to the JS thread)');
        if (name !== 'PFN_HSE_IO_COMPLETION') equal(there.ret, 0x5a5a, 'return value');
        return `deltas ${here.delta}/${there.delta}`;
      } finally {
        koffi.unregister(cb);
      }
    });
  }

  test("the library's own registrations (nativeEntryPoints, the IO completion routine) pop their arguments", async () => {
    const { createExtension, SimpleHandler, HSE_VERSION } = requireStaged('isapi-http');
    const ext = createExtension(new SimpleHandler((req, res) => res.end('x')), { onError: () => {}, watchdog: false });
    const points = ext.nativeEntryPoints();
    const pVer = Buffer.alloc(abi.sizes.HSE_VERSION_INFO);
    const results = [];
    try {
      const gev = await measure(points.GetExtensionVersion, [toU32(koffi.address(pVer))], 'thread');
      equal(gev.ret, 1, 'GetExtensionVersion returned TRUE');
      equal(pVer.readUInt32LE(0), HSE_VERSION, 'GetExtensionVersion wrote dwExtensionVersion');
      // A NULL ECB: the proc rejects it (HSE_STATUS_ERROR) without touching memory.
      const hep = await measure(points.HttpExtensionProc, [0], 'thread');
      equal(hep.ret, 4, 'HttpExtensionProc(NULL) = HSE_STATUS_ERROR');
      const term = await measure(points.TerminateExtension, [2], 'thread');
      equal(term.ret, 1, 'TerminateExtension returned TRUE');
      // The completion routine of this thread, with a context no ECB owns: a no-op.
      const done = await measure(internals.completionRoutine(), [0, 0x7ffffff0, 5, 0], 'thread');
      for (const [what, r] of [['GetExtensionVersion', gev], ['HttpExtensionProc', hep], ['TerminateExtension', term], ['IO completion', done]]) {
        equal(r.delta, 0, `${what} ESP delta`);
        results.push(`${what} ${r.delta}`);
      }
    } finally {
      await ext.terminated;
      ext.dispose();
    }
    return results.join(', ');
  });

  test('NEGATIVE: a callback declared cdecl (no __stdcall) is caught by the ESP check', async () => {
    const caught = [];
    for (const [name, n] of Object.entries(CALLBACKS)) {
      const cb = koffi.register(() => (name === 'PFN_HSE_IO_COMPLETION' ? undefined : 0), koffi.pointer(cdeclOf(name)));
      try {
        const args = Array.from({ length: n }, (_, i) => i + 1);
        const here = await measure(cb, args, 'here');
        const there = await measure(cb, args, 'thread');
        equal(here.delta, -4 * n, `${name} declared cdecl: ESP delta on the JS thread`);
        equal(there.delta, -4 * n, `${name} declared cdecl: ESP delta from a Windows thread`);
        caught.push(`${name} ${here.delta}`);
      } finally {
        koffi.unregister(cb);
      }
    }
    const stats = new Int32Array(3);
    sc.stats(stats);
    assert(stats[1] >= 2 * Object.keys(CALLBACKS).length, `sc_stats counted ${stats[1]} bad calls`);
    return `caught: ${caught.join(', ')}`;
  });
});
