/**
 * Library internals the Windows suite needs but the package does not export: the ABI tables that src/ecb/abi.ts
 * computes with koffi on the running arch, and last-error.ts (kernel32 GetLastError/SetLastError on win32).
 * scripts/windows/run.sh bundles this file with esbuild (koffi external) into the win32 stage as internals.cjs.
 */
export { getAbi, STRUCT_DEFS, PROTO_SIGNATURES } from '../../src/ecb/abi.js';
export { lastError } from '../../src/ecb/last-error.js';
export { getKoffi } from '../../src/ecb/koffi.js';
export { completionRoutine } from '../../src/ecb/io-completion.js';
