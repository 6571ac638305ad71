/**
 * The native side of the three ISAPI exports (ISAPI.md §1, §4): writing HSE_VERSION_INFO, and registering JS
 * functions as native function pointers with the exact WINAPI prototypes, which a loader DLL forwards to.
 */
import { getAbi } from './abi.js';
import { HSE_MAX_EXT_DLL_NAME_LEN, HSE_VERSION } from './constants.js';
import { getKoffi } from './koffi.js';
import { invalidArgument } from '../errors.js';

/** Fill HSE_VERSION_INFO at `pVer`: the version, and an ASCII description of at most 255 characters plus NUL. */
export function writeVersionInfo(pVer: bigint, description: string): void {
  if (typeof pVer !== 'bigint' || pVer === 0n) throw invalidArgument('GetExtensionVersion needs a non-NULL HSE_VERSION_INFO address');
  const abi = getAbi();
  const off = abi.offsets.HSE_VERSION_INFO;
  const view = Buffer.from(getKoffi().view(pVer as never, abi.sizes.HSE_VERSION_INFO) as ArrayBuffer);
  view.writeUInt32LE(HSE_VERSION, off.dwExtensionVersion);
  // IIS reads the description in the ANSI code page; keep it ASCII so it reads the same everywhere.
  const ascii = description.replace(/[^\x20-\x7e]/g, '?').slice(0, HSE_MAX_EXT_DLL_NAME_LEN - 1);
  view.fill(0, off.lpszExtensionDesc, off.lpszExtensionDesc + HSE_MAX_EXT_DLL_NAME_LEN);
  view.write(ascii, off.lpszExtensionDesc, 'latin1');
}

export interface EntryPointFunctions {
  GetExtensionVersion(pVer: bigint): boolean;
  HttpExtensionProc(pEcb: bigint): number;
  TerminateExtension(dwFlags: number): boolean;
}

export interface NativeEntryPoints {
  readonly GetExtensionVersion: bigint;
  readonly HttpExtensionProc: bigint;
  readonly TerminateExtension: bigint;
}

/** Register the three exports with koffi. Each wrapper returns an explicit value and never throws (koffi.md pitfall 6). */
export function registerEntryPoints(fns: EntryPointFunctions): { pointers: NativeEntryPoints; unregister(): void } {
  const koffi = getKoffi();
  const { protos } = getAbi();
  const reg = (fn: (...args: never[]) => unknown, proto: unknown): bigint => koffi.register(fn as never, koffi.pointer(proto as never)) as unknown as bigint;
  const pointers: NativeEntryPoints = {
    GetExtensionVersion: reg(((pVer: bigint) => (fns.GetExtensionVersion(pVer) ? 1 : 0)) as never, protos.GetExtensionVersion),
    HttpExtensionProc: reg(((pEcb: bigint) => fns.HttpExtensionProc(pEcb)) as never, protos.HttpExtensionProc),
    TerminateExtension: reg(((flags: number) => (fns.TerminateExtension(flags) ? 1 : 0)) as never, protos.TerminateExtension),
  };
  return {
    pointers,
    unregister() {
      for (const p of Object.values(pointers)) koffi.unregister(p as never);
    },
  };
}
