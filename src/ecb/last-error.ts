/**
 * GetLastError/SetLastError for the thread that made the failing host call (ISAPI.md §1: every ECB callback
 * reports failure as FALSE plus a thread-local Win32 code).
 *
 * - Windows: kernel32's GetLastError/SetLastError through koffi. koffi keeps the value intact across its own
 *   machinery (koffi.md §3a, "Protect GetLastError() value from Node.js and V8"). koffi.errno() is no substitute
 *   there: it reads koffi's own C runtime's errno, not a host DLL's (the Wine lane saw 0 where GetLastError gave
 *   122, 1413 and the host's own codes: docs/windows.md W1). The code is per thread, which is what ISAPI needs:
 *   an ECB function runs on the thread that calls it (the main thread, or a ThreadPoolHandler worker).
 * - Elsewhere (the emulated host, the C host): hosts store the code in errno, and koffi saves errno right after
 *   each native call, so koffi.errno() reads what the host set.
 */
import { getKoffi } from './koffi.js';

export interface LastErrorAccess {
  get(): number;
  set(code: number): void;
}

let access: LastErrorAccess | null = null;

export function lastError(): LastErrorAccess {
  if (access) return access;
  const koffi = getKoffi();
  if (process.platform === 'win32') {
    const kernel32 = koffi.load('kernel32.dll');
    const get = kernel32.func('uint32_t __stdcall GetLastError()') as () => number;
    const set = kernel32.func('void __stdcall SetLastError(uint32_t dwErrCode)') as (code: number) => void;
    access = { get, set };
  } else {
    access = { get: () => koffi.errno(), set: (code) => void koffi.errno(code) };
  }
  return access;
}
