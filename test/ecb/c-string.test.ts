/** C strings read through koffi.view block by block (src/ecb/c-string.ts), at and across 4 KiB block edges. */
import { cStringAt, cStringBytes } from '../../src/ecb/c-string.js';
import { getKoffi } from '../../src/ecb/koffi.js';

const koffi = getKoffi();

/** A native block of 3 pages with `text` (then a NUL) placed so that it starts `before` bytes ahead of a 4 KiB edge. */
function place(text: Buffer, before: number): { p: bigint; free: () => void } {
  const block = koffi.alloc('uint8_t', 3 * 4096);
  const base = koffi.address(block) as bigint;
  const edge = (base / 4096n + 1n) * 4096n; // the first 4 KiB boundary inside the block
  const p = edge - BigInt(before);
  const view = new Uint8Array(koffi.view(p as never, text.length + 1) as ArrayBuffer);
  view.set(text);
  view[text.length] = 0;
  return { p, free: () => koffi.free(block) };
}

test.each([
  ['inside one block', 'GET', 100],
  ['ends right before the edge (NUL is the last byte of the block)', 'abcd', 5],
  ['NUL is the first byte of the next block', 'abcd', 4],
  ['crosses the edge', 'x'.repeat(50) + '/path?q=1', 20],
  ['longer than a block', 'y'.repeat(6000), 10],
  ['empty', '', 1],
])('%s', (_name, text, before) => {
  const { p, free } = place(Buffer.from(text, 'latin1'), before);
  try {
    expect(cStringAt(koffi, p)).toBe(text);
    expect(cStringBytes(koffi, p).equals(Buffer.from(text, 'latin1'))).toBe(true);
  } finally {
    free();
  }
});

test('every byte survives as latin1; utf8 decodes across an edge', () => {
  const bytes = Buffer.from(Array.from({ length: 255 }, (_, i) => i + 1));
  const a = place(bytes, 7);
  try {
    expect(Buffer.from(cStringAt(koffi, a.p), 'latin1').equals(bytes)).toBe(true);
  } finally {
    a.free();
  }
  const text = 'café ☕ '.repeat(10);
  const b = place(Buffer.from(text, 'utf8'), 3); // a multi-byte character straddles the edge
  try {
    expect(cStringAt(koffi, b.p, 'utf8')).toBe(text);
  } finally {
    b.free();
  }
});

test('the result is a copy: it survives the memory being reused', () => {
  const { p, free } = place(Buffer.from('stable'), 2);
  const bytes = cStringBytes(koffi, p);
  new Uint8Array(koffi.view(p as never, 6) as ArrayBuffer).fill(0x41);
  free();
  expect(bytes.toString()).toBe('stable');
});
