/**
 * src/ecb/constants.ts against the compiler-evaluated constants of test/fixtures/isapi-abi.json (ISAPI.md §3):
 * every fixture constant is exported with the same value, and nothing else is exported.
 * HSE_VERSION_MAJOR is the Windows SDK's 8 in both (MinGW says 6; ISAPI.md §13 item 20).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as C from '../../src/ecb/constants.js';

interface AbiJson {
  constants: { all: Record<string, number>; by_group: Record<string, Record<string, number>> };
}

const abiJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'isapi-abi.json'), 'utf8')) as AbiJson;
const expected = abiJson.constants.all;
const exported = C as unknown as Record<string, unknown>;
const exportedNames = Object.keys(exported).filter((k) => k !== '__esModule' && k !== 'default');

describe('ISAPI constants', () => {
  test('the fixture lists constants (guards against an empty or renamed section)', () => {
    expect(Object.keys(expected).length).toBeGreaterThan(90);
    // by_group is another view of the same values.
    const grouped = Object.assign({}, ...Object.values(abiJson.constants.by_group)) as Record<string, number>;
    expect(grouped).toEqual(expected);
  });

  test.each(Object.entries(expected))('%s = %d', (name, value) => {
    expect(exported).toHaveProperty([name]);
    expect(exported[name]).toBe(value);
  });

  test('constants.ts exports nothing that is not in the fixture', () => {
    expect(exportedNames.filter((n) => !(n in expected))).toEqual([]);
  });

  test('every export is a plain number', () => {
    expect(exportedNames.filter((n) => typeof exported[n] !== 'number')).toEqual([]);
  });

  test('HSE_VERSION is MAKELONG(minor, major)', () => {
    expect(C.HSE_VERSION).toBe(((C.HSE_VERSION_MAJOR << 16) | C.HSE_VERSION_MINOR) >>> 0);
  });
});
