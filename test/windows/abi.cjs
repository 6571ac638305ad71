'use strict';
/**
 * ABI suite, on the running Windows arch: every struct layout koffi computes from src/ecb/abi.ts (sizeof, alignof,
 * every field's offset and size, the flattened members of embedded structs) must equal the compiler's numbers in
 * test/fixtures/isapi-abi.json for this arch (x64: ECB 192 bytes; ia32: 144). Also: koffi comes from its Windows
 * platform package, and kernel32's GetLastError/SetLastError work through src/ecb/last-error.ts.
 */
const path = require('node:path');
const { test, assert, equal, setup, main } = require('./harness.cjs');

main(() => {
  const { requireStaged, internals, koffi, fixture } = setup('abi');
  const arch = process.arch === 'x64' ? 'x64' : process.arch === 'ia32' ? 'ia32' : null;
  if (!arch) throw new Error(`no fixture section for ${process.arch}`);
  const expected = fixture[arch];
  const abi = internals.getAbi();

  test(`koffi ${koffi.version ?? ''} loads its win32-${arch} binary from the stage`, () => {
    const pkg = `@koromix/koffi-win32-${arch}`;
    const where = requireStaged.resolve(`${pkg}/package.json`);
    const koffiPath = requireStaged.resolve('koffi');
    equal(internals.getKoffi(), requireStaged('koffi'), 'the internals bundle and the stage share one koffi');
    return `${pkg} at ${path.dirname(where)}; koffi at ${path.dirname(koffiPath)}`;
  });

  test(`pointer size is ${fixture.meta.types.pointer[arch]} and getAbi().arch is ${process.arch}`, () => {
    equal(abi.pointerSize, fixture.meta.types.pointer[arch], 'pointerSize');
    equal(koffi.sizeof('void *'), fixture.meta.types.pointer[arch], "koffi.sizeof('void *')");
    equal(abi.arch, process.arch, 'abi.arch');
  });

  test('STRUCT_DEFS declares exactly the structs of the fixture', () => {
    const ours = Object.keys(internals.STRUCT_DEFS).sort();
    const theirs = Object.keys(expected).sort();
    equal(ours.join(','), theirs.join(','), 'struct names');
    return `${ours.length} structs`;
  });

  let checked = 0;
  for (const [name, want] of Object.entries(expected)) {
    test(`${name}: sizeof ${want.size}, alignof ${want.align}, ${want.fields.length} fields as ${arch} compilers lay them out`, () => {
      const t = abi.types[name];
      assert(t, `getAbi() has no type ${name}`);
      equal(koffi.sizeof(t), want.size, `sizeof(${name})`);
      equal(koffi.alignof(t), want.align, `alignof(${name})`);
      equal(abi.sizes[name], want.size, `abi.sizes.${name}`);
      equal(abi.aligns[name], want.align, `abi.aligns.${name}`);
      const members = koffi.type(t).members;
      const direct = want.fields.filter((f) => !f.name.includes('.')).map((f) => f.name);
      equal(internals.STRUCT_DEFS[name].map((f) => f.name).join(','), direct.join(','), `${name} field order`);
      for (const f of want.fields) {
        const dot = f.name.indexOf('.');
        if (dot < 0) {
          equal(koffi.offsetof(t, f.name), f.offset, `offsetof(${name}, ${f.name})`);
          equal(abi.offsets[name][f.name], f.offset, `abi.offsets.${name}.${f.name}`);
          equal(members[f.name].type.size, f.size, `sizeof ${name}.${f.name}`);
        } else {
          const outer = f.name.slice(0, dot);
          const inner = f.name.slice(dot + 1);
          const nested = internals.STRUCT_DEFS[name].find((x) => x.name === outer).type;
          equal(abi.offsets[name][outer] + abi.offsets[nested][inner], f.offset, `offsetof(${name}, ${f.name})`);
          equal(koffi.type(abi.types[nested]).members[inner].type.size, f.size, `sizeof ${name}.${f.name}`);
        }
        checked++;
      }
      return `${want.fields.length} fields equal`;
    });
  }

  test(`the ECB's four callback pointers sit where the fixture says for ${arch}`, () => {
    const off = abi.offsets.EXTENSION_CONTROL_BLOCK;
    const got = ['GetServerVariable', 'WriteClient', 'ReadClient', 'ServerSupportFunction'].map((cb) => {
      equal(off[cb], fixture.prototypes[cb].ecb_offset[arch], `offsetof(ECB, ${cb})`);
      return off[cb];
    });
    return `${got.join('/')}; ${checked} field values compared in total, 0 differences`;
  });

  test('every prototype of PROTO_SIGNATURES is declared __stdcall and parses', () => {
    for (const [name, sig] of Object.entries(internals.PROTO_SIGNATURES)) {
      assert(/__stdcall/.test(sig), `${name} is not __stdcall: ${sig}`);
      assert(abi.protos[name], `getAbi().protos.${name} missing`);
      const fx = fixture.prototypes[name];
      if (fx && fx.koffi) {
        const args = (s) => s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')).split(',').length;
        equal(args(sig), args(fx.koffi), `${name} argument count vs the fixture`);
      }
    }
    return `${Object.keys(internals.PROTO_SIGNATURES).length} prototypes`;
  });

  test('lastError() is kernel32 on win32: SetLastError/GetLastError round trip x1000', () => {
    const le = internals.lastError();
    const k32 = koffi.load('kernel32.dll');
    const GetLastError = k32.func('uint32_t __stdcall GetLastError()');
    let bad = 0;
    for (let i = 0; i < 1000; i++) {
      const code = (i * 7919 + 122) >>> 0;
      le.set(code);
      if (le.get() !== code) bad++;
      if (GetLastError() !== code) bad++;
    }
    equal(bad, 0, 'mismatches');
    le.set(0);
    return 'mismatches 0';
  });
});
