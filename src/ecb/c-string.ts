/**
 * Reading a NUL-terminated C string out of native memory without leaking.
 *
 * Not `koffi.decode(p, 'uint8_t', -1)`: in koffi 3.3.4 every decode given a length (-1 included) leaks about 18
 * bytes of native memory, which bench/soak.ts showed as ~50 bytes per request (test/ecb/native-memory.test.ts).
 * A koffi.view over the rest of the current 4 KiB block is safe to read: the block holds the string's next byte, so
 * its page is mapped, and the next block is only read when the string goes on into it.
 */
import type { getKoffi } from './koffi.js';

type Koffi = ReturnType<typeof getKoffi>;

/**
 * Memory-protection granularity assumed here: 4 KiB, the smallest page size of every platform Node runs on (larger
 * pages are multiples of it, so a 4 KiB-aligned block never straddles a mapped and an unmapped page).
 */
const PAGE = 4096;

/** The bytes of the NUL-terminated string at `p` (not 0), copied out of native memory. */
export function cStringBytes(koffi: Koffi, p: bigint): Buffer {
  const parts: Buffer[] = [];
  for (let at = p; ; ) {
    const room = PAGE - Number(at % BigInt(PAGE));
    const bytes = new Uint8Array(koffi.view(at as never, room) as ArrayBuffer);
    const nul = bytes.indexOf(0);
    parts.push(Buffer.from(bytes.subarray(0, nul < 0 ? room : nul))); // Buffer.from(Uint8Array) copies
    if (nul >= 0) return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    at += BigInt(room);
  }
}

/** The NUL-terminated string at `p` (not 0), decoded; latin1 by default, so that every byte survives. */
export function cStringAt(koffi: Koffi, p: bigint, encoding: BufferEncoding = 'latin1'): string {
  // The common case, a string inside one block, decodes straight from the view without a copy.
  const room = PAGE - Number(p % BigInt(PAGE));
  const bytes = new Uint8Array(koffi.view(p as never, room) as ArrayBuffer);
  const nul = bytes.indexOf(0);
  if (nul >= 0) return Buffer.from(bytes.buffer, 0, nul).toString(encoding);
  return cStringBytes(koffi, p).toString(encoding);
}
