/**
 * koffi's layout of every ISAPI struct, as declared by src/ecb/abi.ts, against the compiler's numbers for Windows x64
 * (test/fixtures/isapi-abi.json, ISAPI.md §2/§15). Linux x64 (LP64, SysV) lays these structs out exactly like Win64
 * (the fixture's meta.linux_x64_matches_windows_x64), so running on linux/x64 is a real check.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getAbi, STRUCT_DEFS, PROTO_SIGNATURES, type AbiStructName, type AbiProtoName } from '../../src/ecb/abi.js';
import { getKoffi } from '../../src/ecb/koffi.js';

interface JsonField {
  name: string;
  offset: number;
  size: number;
  type: string;
}
interface JsonStruct {
  size: number;
  align: number;
  fields: JsonField[];
}
interface JsonProto {
  koffi?: string;
  ecb_offset?: { x64: number; ia32: number };
}
interface AbiJson {
  x64: Record<string, JsonStruct>;
  prototypes: Record<string, JsonProto>;
}

const abiJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'isapi-abi.json'), 'utf8')) as AbiJson;

const onX64 = process.arch === 'x64';
if (!onX64) {
  console.warn(`abi.x64.test.ts skipped: process.arch is ${process.arch}; koffi lays structs out for the running arch, and the fixture's x64 section needs x64`);
}
const describeX64 = onX64 ? describe : describe.skip;

const x64Entries = Object.entries(abiJson.x64) as [AbiStructName, JsonStruct][];

function koffiMember(s: AbiStructName, field: string) {
  const k = getKoffi();
  const member = k.type(getAbi().types[s]).members?.[field];
  if (!member) throw new Error(`koffi struct ${s} has no member ${field}`);
  return member;
}

describeX64('ISAPI ABI on x64 (koffi vs compiler output)', () => {
  test('STRUCT_DEFS declares exactly the structs of the fixture', () => {
    expect(Object.keys(STRUCT_DEFS).sort()).toEqual(Object.keys(abiJson.x64).sort());
  });

  test('the pointer size is 8', () => {
    expect(getAbi().pointerSize).toBe(8);
    expect(getAbi().arch).toBe('x64');
  });

  describe.each(x64Entries)('%s', (name, expected) => {
    test(`direct fields in declaration order`, () => {
      const direct = expected.fields.filter((f) => !f.name.includes('.')).map((f) => f.name);
      expect(STRUCT_DEFS[name].map((f) => f.name)).toEqual(direct);
    });

    test(`sizeof = ${expected.size}, alignof = ${expected.align}`, () => {
      const k = getKoffi();
      const t = getAbi().types[name];
      expect(k.sizeof(t)).toBe(expected.size);
      expect(k.alignof(t)).toBe(expected.align);
      expect(getAbi().sizes[name]).toBe(expected.size);
      expect(getAbi().aligns[name]).toBe(expected.align);
    });

    test.each(expected.fields)('$name at $offset, size $size', (field) => {
      const k = getKoffi();
      const abi = getAbi();
      const offsets = abi.offsets[name] as Readonly<Record<string, number>>;
      const dot = field.name.indexOf('.');
      if (dot < 0) {
        expect(k.offsetof(abi.types[name], field.name)).toBe(field.offset);
        expect(offsets[field.name]).toBe(field.offset);
        expect(koffiMember(name, field.name).type.size).toBe(field.size);
        return;
      }
      // Flattened member of a struct embedded by value (CERT_CONTEXT_EX.CertContext.*): outer offset + inner offset.
      const outer = field.name.slice(0, dot);
      const inner = field.name.slice(dot + 1);
      const nestedName = STRUCT_DEFS[name].find((f) => f.name === outer)?.type as AbiStructName | undefined;
      expect(nestedName).toBeDefined();
      const nested = nestedName as AbiStructName;
      expect(nested in STRUCT_DEFS).toBe(true);
      const innerOffsets = abi.offsets[nested] as Readonly<Record<string, number>>;
      expect(k.offsetof(abi.types[name], outer) + k.offsetof(abi.types[nested], inner)).toBe(field.offset);
      expect((offsets[outer] ?? NaN) + (innerOffsets[inner] ?? NaN)).toBe(field.offset);
      expect(koffiMember(nested, inner).type.size).toBe(field.size);
    });
  });

  test('the ECB callback pointers sit where the fixture says (ISAPI.md §1)', () => {
    const offsets = getAbi().offsets.EXTENSION_CONTROL_BLOCK;
    for (const cb of ['GetServerVariable', 'WriteClient', 'ReadClient', 'ServerSupportFunction'] as const) {
      expect(offsets[cb]).toBe(abiJson.prototypes[cb]?.ecb_offset?.x64);
    }
  });

  test('the x64 ECB hole after lpszLogData is there (ISAPI.md §13 item 1)', () => {
    const o = getAbi().offsets.EXTENSION_CONTROL_BLOCK;
    expect(o.lpszLogData + 80).toBe(100);
    expect(o.lpszMethod).toBe(104);
  });
});

describeX64('ISAPI prototypes', () => {
  const sameAsFixture: AbiProtoName[] = [
    'GetServerVariable',
    'WriteClient',
    'ReadClient',
    'PFN_HSE_IO_COMPLETION',
    'GetExtensionVersion',
    'HttpExtensionProc',
    'TerminateExtension',
  ];

  test.each(sameAsFixture)('%s matches the fixture signature', (p) => {
    expect(PROTO_SIGNATURES[p]).toBe(abiJson.prototypes[p]?.koffi);
  });

  test('ServerSupportFunction differs from the fixture only by raw void * for the smuggling slots (ISAPI.md §13 item 17)', () => {
    const typed = PROTO_SIGNATURES.ServerSupportFunction.replace(
      'void *lpdwSize, void *lpdwDataType',
      'uint32_t *lpdwSize, uint32_t *lpdwDataType',
    );
    expect(typed).not.toBe(PROTO_SIGNATURES.ServerSupportFunction);
    expect(typed).toBe(abiJson.prototypes.ServerSupportFunction?.koffi);
  });

  test.each(Object.keys(PROTO_SIGNATURES) as AbiProtoName[])('%s is declared with its arity and a pointer size of 8', (p) => {
    const k = getKoffi();
    const t = getAbi().protos[p];
    const info = k.type(t);
    expect(info.primitive).toBe('Prototype');
    const params = /\((.*)\)$/.exec(PROTO_SIGNATURES[p])?.[1]?.split(',') ?? [];
    expect(info.proto?.arguments).toHaveLength(params.length);
    expect(k.sizeof(k.pointer(t))).toBe(8);
  });

  test('each *_raw prototype has only void * where its library twin has a pointer', () => {
    for (const p of ['GetServerVariable', 'WriteClient', 'ReadClient', 'ServerSupportFunction'] as const) {
      const raw = PROTO_SIGNATURES[`${p}_raw`];
      expect(raw.replace(`${p}_raw(`, `${p}(`).replace(/(?:const )?(?:char|uint32_t) \*/g, 'void *')).toBe(
        PROTO_SIGNATURES[p].replace(/(?:const )?(?:char|uint32_t) \*/g, 'void *'),
      );
      expect(raw).not.toMatch(/char \*|uint32_t \*/);
    }
  });

  test('a Uint32Array or Buffer for uint32_t * is passed by address; a JS array is not written back', () => {
    const k = getKoffi();
    const { protos } = getAbi();
    const seen: string[] = [];
    // Host side: the raw form gets plain addresses and writes through them, as an emulated IIS would.
    const hostGsv = k.register((_hConn: unknown, namePtr: bigint, _buf: unknown, sizePtr: bigint) => {
      seen.push(k.decode(namePtr, 'char', -1) as string);
      const before = k.decode(sizePtr, 'uint32_t') as number;
      k.encode(sizePtr, 'uint32_t', before + 4235);
      return 1;
    }, k.pointer(protos.GetServerVariable_raw));
    try {
      // Library side: the typed form, reached through the function pointer as it would be read from the ECB.
      const gsv = k.decode(hostGsv, protos.GetServerVariable) as (h: null, n: string, b: null, s: unknown) => number;

      const u32 = new Uint32Array([7]);
      expect(gsv(null, 'ALL_RAW', null, u32)).toBe(1);
      expect(u32[0]).toBe(4242);

      const buf = Buffer.alloc(4);
      buf.writeUInt32LE(7);
      expect(gsv(null, 'SERVER_PORT', null, buf)).toBe(1);
      expect(buf.readUInt32LE(0)).toBe(4242);

      const arr = [7];
      expect(gsv(null, 'URL', null, arr)).toBe(1);
      expect(arr[0]).toBe(7); // copied into koffi's call heap, the callee's write is lost

      expect(seen).toEqual(['ALL_RAW', 'SERVER_PORT', 'URL']);
    } finally {
      k.unregister(hostGsv);
    }
  });
});

describe('abi.ts laziness and memoisation', () => {
  test('importing abi.ts does not load koffi; getAbi() loads it once and memoises', () => {
    jest.isolateModules(() => {
      const actual = jest.requireActual<typeof import('../../src/ecb/koffi.js')>('../../src/ecb/koffi.js');
      const getKoffiSpy = jest.fn(actual.getKoffi);
      jest.doMock('../../src/ecb/koffi.js', () => ({ ...actual, getKoffi: getKoffiSpy }));
      try {
        const mod = jest.requireActual<typeof import('../../src/ecb/abi.js')>('../../src/ecb/abi.js');
        expect(getKoffiSpy).not.toHaveBeenCalled();
        if (!onX64) return;
        const first = mod.getAbi();
        expect(mod.getAbi()).toBe(first);
        expect(getKoffiSpy).toHaveBeenCalledTimes(1);
      } finally {
        jest.dontMock('../../src/ecb/koffi.js');
      }
    });
  });

  (onX64 ? test : test.skip)('a second copy of abi.ts in the same thread reuses the identical koffi types', () => {
    const original = getAbi();
    let copy: ReturnType<typeof getAbi> | undefined;
    jest.isolateModules(() => {
      // Fresh module registry: abi.ts, koffi.ts and koffi's JS are evaluated again, but koffi's native type registry is
      // per thread, so every koffi.struct/proto name already exists ("Duplicate type name" without the guard).
      copy = jest.requireActual<typeof import('../../src/ecb/abi.js')>('../../src/ecb/abi.js').getAbi();
    });
    expect(copy).toBeDefined();
    expect(copy).not.toBe(original);
    expect(copy?.offsets).toEqual(original.offsets);
    expect(copy?.sizes).toEqual(original.sizes);
    expect(Object.keys(copy?.protos ?? {})).toEqual(Object.keys(original.protos));
  });

  (onX64 ? test : test.skip)('a clashing declaration with a different layout is refused', () => {
    getAbi();
    jest.isolateModules(() => {
      const mod = jest.requireActual<typeof import('../../src/ecb/abi.js')>('../../src/ecb/abi.js');
      const defs = mod.STRUCT_DEFS as unknown as Record<string, { name: string; type: string; c: string }[]>;
      // Mutating this isolated copy's plain data simulates another module that declared the name differently.
      const saved = defs.HSE_TRACE_INFO;
      defs.HSE_TRACE_INFO = [{ name: 'fTraceRequest', type: 'ULONGLONG', c: 'ULONGLONG' }];
      try {
        expect(() => mod.getAbi()).toThrow(/already declared .* different layout/);
      } finally {
        defs.HSE_TRACE_INFO = saved ?? [];
      }
    });
  });
});
