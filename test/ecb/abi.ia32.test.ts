/**
 * koffi can only lay structs out for the arch it runs on, so the ia32 layouts of STRUCT_DEFS are checked with a small
 * C layout calculator instead, against the compiler's numbers in test/fixtures/isapi-abi.json (ISAPI.md §2, §15).
 * The same calculator run with x64 rules must reproduce the x64 section: that proves the calculator, so a pass on
 * ia32 means something. Pure JS: no koffi, runs on every arch.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { STRUCT_DEFS, type AbiElementType, type AbiStructName } from '../../src/ecb/abi.js';

interface JsonField {
  name: string;
  offset: number;
  size: number;
}
interface JsonStruct {
  size: number;
  align: number;
  fields: JsonField[];
}
interface AbiJson {
  x64: Record<string, JsonStruct>;
  ia32: Record<string, JsonStruct>;
}

const abiJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'isapi-abi.json'), 'utf8')) as AbiJson;

interface Rules {
  /** Size and alignment of pointers and HANDLEs. */
  readonly pointer: number;
  /** Alignment of a ULONGLONG inside a struct (8 under MSVC/MinGW on both targets, ISAPI.md §1). */
  readonly ulonglongAlign: number;
}

const IA32: Rules = { pointer: 4, ulonglongAlign: 8 };
const X64: Rules = { pointer: 8, ulonglongAlign: 8 };

interface Layout {
  size: number;
  align: number;
  /** Direct members and, for members that are structs, their flattened members as `outer.inner`. */
  fields: Map<string, { offset: number; size: number }>;
}

const ARRAY_RE = /^(CHAR|WCHAR|BYTE)\[(\d+)\]$/;
const roundUp = (n: number, a: number) => Math.ceil(n / a) * a;

function elementLayout(t: AbiElementType, rules: Rules): Layout {
  switch (t) {
    case 'DWORD':
    case 'BOOL':
      return { size: 4, align: 4, fields: new Map() };
    case 'USHORT':
      return { size: 2, align: 2, fields: new Map() };
    case 'ULONGLONG':
      return { size: 8, align: rules.ulonglongAlign, fields: new Map() };
    case 'HANDLE':
    case 'PTR':
      return { size: rules.pointer, align: rules.pointer, fields: new Map() };
  }
  const m = ARRAY_RE.exec(t);
  if (m) {
    // Arrays align as their element: CHAR/BYTE 1, WCHAR 2.
    const elem = m[1] === 'WCHAR' ? 2 : 1;
    return { size: elem * Number(m[2]), align: elem, fields: new Map() };
  }
  if (t in STRUCT_DEFS) return structLayout(t as AbiStructName, rules);
  throw new Error(`unknown element type ${t}`);
}

function structLayout(name: AbiStructName, rules: Rules): Layout {
  let offset = 0;
  let align = 1;
  const fields = new Map<string, { offset: number; size: number }>();
  for (const f of STRUCT_DEFS[name]) {
    const el = elementLayout(f.type, rules);
    offset = roundUp(offset, el.align);
    fields.set(f.name, { offset, size: el.size });
    for (const [inner, v] of el.fields) fields.set(`${f.name}.${inner}`, { offset: offset + v.offset, size: v.size });
    offset += el.size;
    align = Math.max(align, el.align);
  }
  return { size: roundUp(offset, align), align, fields };
}

/** Every difference between the calculator and a fixture section, as readable strings (empty = identical). */
function mismatches(section: Record<string, JsonStruct>, rules: Rules): string[] {
  const out: string[] = [];
  for (const [name, expected] of Object.entries(section)) {
    if (!(name in STRUCT_DEFS)) {
      out.push(`${name}: missing from STRUCT_DEFS`);
      continue;
    }
    const got = structLayout(name as AbiStructName, rules);
    if (got.size !== expected.size) out.push(`${name}.size ${got.size} != ${expected.size}`);
    if (got.align !== expected.align) out.push(`${name}.align ${got.align} != ${expected.align}`);
    for (const f of expected.fields) {
      const g = got.fields.get(f.name);
      if (!g) out.push(`${name}.${f.name}: missing`);
      else if (g.offset !== f.offset || g.size !== f.size) out.push(`${name}.${f.name} @${g.offset}/${g.size} != @${f.offset}/${f.size}`);
    }
    if (got.fields.size !== expected.fields.length) out.push(`${name}: ${got.fields.size} fields != ${expected.fields.length}`);
  }
  return out;
}

function fieldCases(section: Record<string, JsonStruct>) {
  return Object.entries(section).flatMap(([struct, s]) => s.fields.map((f) => ({ struct: struct as AbiStructName, ...f })));
}

describe('layout calculator, proven on x64', () => {
  test('STRUCT_DEFS declares exactly the structs of both fixture sections', () => {
    expect(Object.keys(STRUCT_DEFS).sort()).toEqual(Object.keys(abiJson.x64).sort());
    expect(Object.keys(STRUCT_DEFS).sort()).toEqual(Object.keys(abiJson.ia32).sort());
  });

  test('x64 rules reproduce the whole x64 section', () => {
    expect(mismatches(abiJson.x64, X64)).toEqual([]);
  });

  test.each(Object.entries(abiJson.x64))('x64 %s size and align', (name, s) => {
    const got = structLayout(name as AbiStructName, X64);
    expect([got.size, got.align]).toEqual([s.size, s.align]);
  });

  test.each(fieldCases(abiJson.x64))('x64 $struct.$name at $offset, size $size', (f) => {
    expect(structLayout(f.struct, X64).fields.get(f.name)).toEqual({ offset: f.offset, size: f.size });
  });
});

describe('ia32 layouts of STRUCT_DEFS', () => {
  test('ia32 rules reproduce the whole ia32 section', () => {
    expect(mismatches(abiJson.ia32, IA32)).toEqual([]);
  });

  test.each(Object.entries(abiJson.ia32))('ia32 %s size and align', (name, s) => {
    const got = structLayout(name as AbiStructName, IA32);
    expect([got.size, got.align]).toEqual([s.size, s.align]);
  });

  test.each(fieldCases(abiJson.ia32))('ia32 $struct.$name at $offset, size $size', (f) => {
    expect(structLayout(f.struct, IA32).fields.get(f.name)).toEqual({ offset: f.offset, size: f.size });
  });

  test('ia32 ECB has no hole after lpszLogData and is 144 bytes (ISAPI.md §1, §13 item 1)', () => {
    const ecb = structLayout('EXTENSION_CONTROL_BLOCK', IA32);
    expect(ecb.fields.get('lpszMethod')?.offset).toBe(16 + 80);
    expect(ecb.size).toBe(144);
  });
});

describe('the checks can fail', () => {
  test('ULONGLONG 4-aligned on ia32 (wrong): HSE_VECTOR_ELEMENT alignment is the only difference', () => {
    // ISAPI.md §13 item 2: pvContext ends at 8, so cbOffset lands on 8 with either rule; what the 8-alignment changes
    // is the struct's own alignment (8, not 4). So this rule error shows up in `align`, not in cbOffset's offset.
    const wrong = { ...IA32, ulonglongAlign: 4 };
    const ve = structLayout('HSE_VECTOR_ELEMENT', wrong);
    expect(ve.fields.get('cbOffset')?.offset).toBe(8);
    expect(ve.align).toBe(4);
    expect(mismatches(abiJson.ia32, wrong)).toEqual(['HSE_VECTOR_ELEMENT.align 4 != 8']);
  });

  test('8-byte pointers against the ia32 section (wrong): cbOffset and the ECB callbacks move', () => {
    const wrong = { ...IA32, pointer: 8 };
    const found = mismatches(abiJson.ia32, wrong);
    expect(found).toContain('HSE_VECTOR_ELEMENT.cbOffset @16/8 != @8/8');
    expect(found).toContain('EXTENSION_CONTROL_BLOCK.size 192 != 144');
    expect(found).toContain('EXTENSION_CONTROL_BLOCK.GetServerVariable @160/8 != @128/4');
  });

  test('4-byte pointers are fine for the ECB but wrong for x64', () => {
    // The ECB has no ULONGLONG, so only the pointer size separates its two layouts.
    const ecbOnly = { EXTENSION_CONTROL_BLOCK: abiJson.ia32.EXTENSION_CONTROL_BLOCK as JsonStruct };
    expect(mismatches(ecbOnly, { pointer: 4, ulonglongAlign: 4 })).toEqual([]);
    expect(mismatches({ EXTENSION_CONTROL_BLOCK: abiJson.x64.EXTENSION_CONTROL_BLOCK as JsonStruct }, IA32)).not.toEqual([]);
  });
});
