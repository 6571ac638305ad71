/**
 * NativeEcb must not leave native memory behind, and must not hand out views of host memory.
 *
 * - koffi 3.3.4 leaks about 18 bytes of native memory on every koffi.decode given a length (`'uint8_t', -1`
 *   included: it builds an array type per call). NativeEcb read each ANSI field (method, path, query...) that way,
 *   which bench/soak.ts showed as ~50 bytes per request, for ever. The first test reads the string fields 100,000
 *   times and requires glibc's malloc-in-use (mallinfo2) to stay flat; it is skipped where there is no glibc.
 * - readAhead() is documented as a copy (src/ecb/ecb.ts), because lpbData belongs to the host and is freed with the
 *   request; Buffer.from(ArrayBuffer) over koffi.view() is a view, so it aliased lpbData.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { HSE_STATUS_SUCCESS } from '../../src/ecb/constants.js';
import { NativeEcb } from '../../src/ecb/native-ecb.js';
import { RequestModel } from '../../src/ecb/request-model.js';
import { CHost } from '../native/c-host.js';
import { loadGlibc } from '../support/native-memory.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const glibc = loadGlibc();

let host: CHost;
beforeAll(() => {
  host = new CHost();
});
afterAll(() => host.close());

const settle = async (): Promise<number> => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  return glibc?.mallinfo().inUse ?? NaN;
};

(glibc ? test : test.skip)('reading the ECB string fields 100,000 times leaves malloc-in-use flat (glibc)', async () => {
  const model = new RequestModel({ method: 'PATCH', url: '/some/path/here?with=a&query=string', headers: { 'Content-Type': 'text/plain' }, body: 'x' });
  const read = (p: bigint, n: number): string => {
    let last = '';
    for (let i = 0; i < n; i++) {
      const ecb = new NativeEcb(p); // a fresh object: NativeEcb caches each field after its first read
      last = `${ecb.method} ${ecb.pathInfo}?${ecb.queryString} ${ecb.contentType} ${ecb.pathTranslated.length}`;
    }
    return last;
  };
  let seen = '';
  // Warm up (JIT, koffi's caches), then measure 20,000 × 5 reads, three times. A leak grows every window by the same
  // amount; whatever else this jest worker allocates meanwhile (other suites' leftovers) does not, so the smallest
  // growth is the one that counts.
  await host.execute(model, (p) => ((seen = read(p, 2000)), HSE_STATUS_SUCCESS));
  const growth: number[] = [];
  for (let w = 0; w < 3; w++) {
    const before = await settle();
    const r = await host.execute(model, (p) => ((seen = read(p, 20_000)), HSE_STATUS_SUCCESS));
    growth.push((await settle()) - before);
    expect(r.procError).toBeNull();
  }
  expect(seen).toMatch(/^PATCH \/some\/path\/here\?with=a&query=string text\/plain \d+$/);
  // The leak was 5 × 20,000 × ~18 B ≈ 1.8 MB per window; allow far less than that for allocator noise.
  expect(Math.min(...growth)).toBeLessThan(256 * 1024);
});

test('ANSI fields keep every byte (latin1), and a long field is read whole', async () => {
  const long = `/${'a'.repeat(9000)}/\u00e9`; // longer than two 4 KiB blocks, ending in a non-ASCII byte
  let got: { path: string; query: string } | null = null;
  const r = await host.execute(new RequestModel({ url: `${long}?q=\u00ff` }), (p) => {
    const ecb = new NativeEcb(p);
    got = { path: ecb.pathInfo, query: ecb.queryString };
    return HSE_STATUS_SUCCESS;
  });
  expect(r.procError).toBeNull();
  expect(got).toEqual({ path: long, query: 'q=\u00ff' });
});

test('readAhead() is a copy: writing into it leaves lpbData alone', async () => {
  const body = Buffer.from('the read-ahead part of the body');
  let first: Buffer | null = null;
  let second: Buffer | null = null;
  const r = await host.execute(new RequestModel({ method: 'POST', url: '/', body }), (p) => {
    const ecb = new NativeEcb(p);
    first = ecb.readAhead();
    first.fill(0x21);
    second = ecb.readAhead();
    return HSE_STATUS_SUCCESS;
  });
  expect(r.procError).toBeNull();
  expect(second).toEqual(body);
  expect(first).toEqual(Buffer.alloc(body.length, 0x21));
});
