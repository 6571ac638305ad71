/**
 * Where a process's memory is, for bench/soak.ts and test/ecb/native-memory.test.ts: glibc's allocator statistics
 * (mallinfo2), malloc_trim, and an RSS breakdown from /proc/self/smaps. Linux/glibc only; every function degrades
 * to null elsewhere.
 *
 * Why all three: RSS alone cannot tell a leak from memory the allocator keeps. A freed chunk stays in its arena
 * (the main one, or one of up to 8 × cores per-thread arenas), resident, until the top of that arena's heap is free
 * or malloc_trim() returns whole free pages, so a process that once allocated hundreds of MB keeps that RSS while
 * using little of it. mallinfo2's `uordblks + hblkhd` is what is really allocated and not freed: a native leak
 * shows there, retention does not.
 */
import * as fs from 'node:fs';
import { getKoffi } from '../../src/ecb/koffi.js';

export interface MallocInfo {
  /** Bytes allocated and not freed: uordblks (in arenas) + hblkhd (mmap'd chunks). */
  inUse: number;
  /** Bytes free inside the arenas (fordblks): held by glibc, resident only where touched. */
  free: number;
  /** Bytes the arenas took from the OS (arena, all arenas) plus mmap'd chunks (hblkhd). */
  held: number;
}

export interface Glibc {
  mallinfo(): MallocInfo;
  /** malloc_trim(0): give free pages in every arena back to the OS. */
  trim(): void;
}

let glibc: Glibc | null | undefined;

export function loadGlibc(): Glibc | null {
  if (glibc !== undefined) return glibc;
  glibc = null;
  if (process.platform !== 'linux') return glibc;
  try {
    const koffi = getKoffi();
    const libc = koffi.load('libc.so.6');
    const fields = ['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost'];
    const struct = koffi.struct('bench_mallinfo2', Object.fromEntries(fields.map((f) => [f, 'size_t'])));
    const mallinfo2 = libc.func('mallinfo2', struct, []) as () => Record<string, number | bigint>;
    const trim = libc.func('int malloc_trim(size_t pad)') as (pad: number) => number;
    glibc = {
      mallinfo() {
        const m = mallinfo2();
        const n = (k: string): number => Number(m[k] ?? 0);
        return { inUse: n('uordblks') + n('hblkhd'), free: n('fordblks'), held: n('arena') + n('hblkhd') };
      },
      trim() {
        trim(0);
      },
    };
  } catch {
    glibc = null; // musl, or no mallinfo2 (glibc < 2.33)
  }
  return glibc;
}

export interface RssBreakdown {
  /** Resident bytes in glibc's non-main arena heaps (anonymous mappings inside a 64 MB-aligned 64 MB reservation). */
  arenas: number;
  /** Resident bytes in the main arena ([heap], brk). */
  brk: number;
  /** Every other resident anonymous mapping: V8's heap and code, thread stacks, koffi's stacks, large mmap'd chunks. */
  otherAnon: number;
  /** File-backed resident bytes (node, libraries, the host .so). */
  file: number;
  total: number;
}

/** 64 MB: glibc's HEAP_MAX_SIZE on 64-bit (2 × DEFAULT_MMAP_THRESHOLD_MAX); non-main arena heaps are aligned to it. */
const ARENA_HEAP = 64 * 1024 * 1024;

/**
 * Classify resident memory by mapping. A non-main glibc arena heap is one reservation of exactly 64 MB aligned to
 * 64 MB: a read-write part followed by a PROT_NONE remainder. That signature is a heuristic (another 64 MB-aligned
 * 64 MB anonymous reservation would be counted too), good enough to tell allocator retention from the rest.
 */
export function rssBreakdown(): RssBreakdown | null {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/smaps', 'latin1');
  } catch {
    return null;
  }
  interface Mapping { start: bigint; end: bigint; perms: string; path: string; rss: number }
  const maps: Mapping[] = [];
  let cur: Mapping | null = null;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      cur = { start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`), perms: head[3] as string, path: head[4] ?? '', rss: 0 };
      maps.push(cur);
    } else if (cur && line.startsWith('Rss:')) {
      cur.rss = Number(/(\d+)/.exec(line)?.[1] ?? 0) * 1024;
    }
  }
  const out: RssBreakdown = { arenas: 0, brk: 0, otherAnon: 0, file: 0, total: 0 };
  const big = BigInt(ARENA_HEAP);
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i] as Mapping;
    out.total += m.rss;
    if (m.path === '[heap]') out.brk += m.rss;
    else if (m.path.startsWith('/')) out.file += m.rss;
    else if (m.path === '' && m.start % big === 0n) {
      // The rw part and the PROT_NONE rest of one 64 MB reservation.
      const next = maps[i + 1];
      const end = next && next.path === '' && next.start === m.end && next.perms.startsWith('---') ? next.end : m.end;
      if (end - m.start === big && m.perms.startsWith('rw')) out.arenas += m.rss;
      else out.otherAnon += m.rss;
    } else out.otherAnon += m.rss;
  }
  return out;
}
