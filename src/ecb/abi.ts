/**
 * The ISAPI ABI (httpext.h + the wincrypt.h CERT_CONTEXT) as koffi declarations.
 *
 * Two layers:
 *  - `STRUCT_DEFS` / `PROTO_SIGNATURES`: plain, arch-independent data (field order and C-ish element types,
 *    koffi prototype strings). Importing this module touches nothing native, so the package can be imported on
 *    machines without the koffi addon, and tests can lay the structs out for ia32 by hand (test/ecb/abi.ia32.test.ts).
 *  - `getAbi()`: builds the koffi structs and prototypes from that data on first use and memoises them, together with
 *    offset/size/alignment tables for the *current* process's arch (x64: 8-byte pointers, ia32: 4-byte pointers).
 *
 * Layout source of truth: shared/reference/ISAPI.md §2 and test/fixtures/isapi-abi.json (compiler output, §15).
 * test/ecb/abi.x64.test.ts compares every struct, field offset, size and alignment koffi computes with that file.
 *
 * Why offsets are never hand-summed: the x64 ECB has a hidden 4-byte hole after `lpszLogData` (ends at 100,
 * `lpszMethod` starts at 104; ISAPI.md §13 item 1); HSE_EXEC_URL_ENTITY_INFO, HSE_CUSTOM_ERROR_INFO, HSE_TF_INFO,
 * HSE_RESPONSE_VECTOR and CERT_CONTEXT have similar holes. koffi applies the C rules, so we ask koffi.offsetof.
 */
import type { TypeObject } from 'koffi';
import { getKoffi } from './koffi.js';
import { IsapiError, ErrorCodes } from '../errors.js';

type Koffi = ReturnType<typeof getKoffi>;

// ---------------------------------------------------------------------------------------------------------------
// Plain-data description
// ---------------------------------------------------------------------------------------------------------------

/**
 * Element types of struct fields. Sizes: DWORD 4, BOOL 4 (a 32-bit int, ISAPI.md §1), USHORT 2, ULONGLONG 8 (and
 * 8-aligned on ia32 too, §1/§13 item 2), HANDLE/PTR pointer-sized (8 on x64, 4 on ia32), WCHAR 2 (UTF-16 code unit,
 * never wchar_t, which is 4 bytes on Linux: koffi.md Experiment 5). HANDLE is used for opaque handles (HCONN, HANDLE,
 * HCERTSTORE), PTR for everything that points at memory (LPSTR, LPWSTR, PVOID, LPBYTE, function pointers).
 */
export type AbiScalarType = 'DWORD' | 'BOOL' | 'USHORT' | 'ULONGLONG' | 'HANDLE' | 'PTR';
export type AbiArrayType = `CHAR[${number}]` | `WCHAR[${number}]` | `BYTE[${number}]`;
export type AbiElementType = AbiScalarType | AbiArrayType | AbiStructName;

export type AbiStructName =
  | 'HSE_VERSION_INFO'
  | 'EXTENSION_CONTROL_BLOCK'
  | 'HSE_URL_MAPEX_INFO'
  | 'HSE_UNICODE_URL_MAPEX_INFO'
  | 'HSE_TF_INFO'
  | 'HSE_SEND_HEADER_EX_INFO'
  | 'HSE_EXEC_URL_USER_INFO'
  | 'HSE_EXEC_URL_ENTITY_INFO'
  | 'HSE_EXEC_URL_STATUS'
  | 'HSE_EXEC_URL_INFO'
  | 'HSE_EXEC_UNICODE_URL_USER_INFO'
  | 'HSE_EXEC_UNICODE_URL_INFO'
  | 'HSE_CUSTOM_ERROR_INFO'
  | 'HSE_VECTOR_ELEMENT'
  | 'HSE_RESPONSE_VECTOR'
  | 'CERT_CONTEXT'
  | 'CERT_CONTEXT_EX'
  | 'HSE_TRACE_INFO';

export interface AbiFieldDef {
  readonly name: string;
  readonly type: AbiElementType;
  /** The type as httpext.h / wincrypt.h spells it (documentation; tells a reader e.g. LPSTR from LPWSTR). */
  readonly c: string;
}

/**
 * Every struct of ISAPI.md §2, fields in declaration order. A struct used by value (CERT_CONTEXT inside
 * CERT_CONTEXT_EX) must come before its user: getAbi() declares them in this order.
 */
export const STRUCT_DEFS = {
  HSE_VERSION_INFO: [
    { name: 'dwExtensionVersion', type: 'DWORD', c: 'DWORD' },
    { name: 'lpszExtensionDesc', type: 'CHAR[256]', c: 'CHAR[HSE_MAX_EXT_DLL_NAME_LEN]' },
  ],
  EXTENSION_CONTROL_BLOCK: [
    { name: 'cbSize', type: 'DWORD', c: 'DWORD' },
    { name: 'dwVersion', type: 'DWORD', c: 'DWORD' },
    { name: 'ConnID', type: 'HANDLE', c: 'HCONN' },
    { name: 'dwHttpStatusCode', type: 'DWORD', c: 'DWORD' },
    // An 80-byte array inside the ECB, not a pointer: write into it, never replace it (ISAPI.md §13 item 13).
    // On x64 it is followed by a 4-byte hole (100..104) because lpszMethod is 8-aligned (§13 item 1).
    { name: 'lpszLogData', type: 'CHAR[80]', c: 'CHAR[HSE_LOG_BUFFER_LEN]' },
    { name: 'lpszMethod', type: 'PTR', c: 'LPSTR' },
    { name: 'lpszQueryString', type: 'PTR', c: 'LPSTR' },
    { name: 'lpszPathInfo', type: 'PTR', c: 'LPSTR' },
    { name: 'lpszPathTranslated', type: 'PTR', c: 'LPSTR' },
    // 0xFFFFFFFF = unknown / >= 4 GB (§13 item 14).
    { name: 'cbTotalBytes', type: 'DWORD', c: 'DWORD' },
    { name: 'cbAvailable', type: 'DWORD', c: 'DWORD' },
    { name: 'lpbData', type: 'PTR', c: 'LPBYTE' },
    { name: 'lpszContentType', type: 'PTR', c: 'LPSTR' },
    // Function pointers are plain pointers here; call them through getAbi().protos (decode once, koffi.md pattern 2).
    { name: 'GetServerVariable', type: 'PTR', c: 'BOOL (WINAPI*)(HCONN,LPSTR,LPVOID,LPDWORD)' },
    { name: 'WriteClient', type: 'PTR', c: 'BOOL (WINAPI*)(HCONN,LPVOID,LPDWORD,DWORD)' },
    { name: 'ReadClient', type: 'PTR', c: 'BOOL (WINAPI*)(HCONN,LPVOID,LPDWORD)' },
    { name: 'ServerSupportFunction', type: 'PTR', c: 'BOOL (WINAPI*)(HCONN,DWORD,LPVOID,LPDWORD,LPDWORD)' },
  ],
  HSE_URL_MAPEX_INFO: [
    { name: 'lpszPath', type: 'CHAR[260]', c: 'CHAR[MAX_PATH]' },
    { name: 'dwFlags', type: 'DWORD', c: 'DWORD' },
    { name: 'cchMatchingPath', type: 'DWORD', c: 'DWORD' },
    { name: 'cchMatchingURL', type: 'DWORD', c: 'DWORD' },
    { name: 'dwReserved1', type: 'DWORD', c: 'DWORD' },
    { name: 'dwReserved2', type: 'DWORD', c: 'DWORD' },
  ],
  // 532 bytes, no dwReserved1/2, although the IIS 6 docs show them; the headers win (ISAPI.md §13 item 3).
  HSE_UNICODE_URL_MAPEX_INFO: [
    { name: 'lpszPath', type: 'WCHAR[260]', c: 'WCHAR[MAX_PATH]' },
    { name: 'dwFlags', type: 'DWORD', c: 'DWORD' },
    { name: 'cchMatchingPath', type: 'DWORD', c: 'DWORD' },
    { name: 'cchMatchingURL', type: 'DWORD', c: 'DWORD' },
  ],
  HSE_TF_INFO: [
    { name: 'pfnHseIO', type: 'PTR', c: 'PFN_HSE_IO_COMPLETION' },
    { name: 'pContext', type: 'PTR', c: 'PVOID' },
    { name: 'hFile', type: 'HANDLE', c: 'HANDLE' },
    { name: 'pszStatusCode', type: 'PTR', c: 'LPCSTR' },
    { name: 'BytesToWrite', type: 'DWORD', c: 'DWORD' },
    { name: 'Offset', type: 'DWORD', c: 'DWORD' },
    { name: 'pHead', type: 'PTR', c: 'PVOID' },
    { name: 'HeadLength', type: 'DWORD', c: 'DWORD' },
    { name: 'pTail', type: 'PTR', c: 'PVOID' },
    { name: 'TailLength', type: 'DWORD', c: 'DWORD' },
    { name: 'dwFlags', type: 'DWORD', c: 'DWORD' },
  ],
  HSE_SEND_HEADER_EX_INFO: [
    { name: 'pszStatus', type: 'PTR', c: 'LPCSTR' },
    { name: 'pszHeader', type: 'PTR', c: 'LPCSTR' },
    { name: 'cchStatus', type: 'DWORD', c: 'DWORD' },
    { name: 'cchHeader', type: 'DWORD', c: 'DWORD' },
    // Must be an explicit 0/1 (ISAPI.md §13 item 7).
    { name: 'fKeepConn', type: 'BOOL', c: 'BOOL' },
  ],
  HSE_EXEC_URL_USER_INFO: [
    { name: 'hImpersonationToken', type: 'HANDLE', c: 'HANDLE' },
    { name: 'pszCustomUserName', type: 'PTR', c: 'LPSTR' },
    { name: 'pszCustomAuthType', type: 'PTR', c: 'LPSTR' },
  ],
  HSE_EXEC_URL_ENTITY_INFO: [
    { name: 'cbAvailable', type: 'DWORD', c: 'DWORD' },
    { name: 'lpbData', type: 'PTR', c: 'LPVOID' },
  ],
  HSE_EXEC_URL_STATUS: [
    { name: 'uHttpStatusCode', type: 'USHORT', c: 'USHORT' },
    { name: 'uHttpSubStatus', type: 'USHORT', c: 'USHORT' },
    { name: 'dwWin32Error', type: 'DWORD', c: 'DWORD' },
  ],
  HSE_EXEC_URL_INFO: [
    { name: 'pszUrl', type: 'PTR', c: 'LPSTR' },
    { name: 'pszMethod', type: 'PTR', c: 'LPSTR' },
    { name: 'pszChildHeaders', type: 'PTR', c: 'LPSTR' },
    { name: 'pUserInfo', type: 'PTR', c: 'LPHSE_EXEC_URL_USER_INFO' },
    { name: 'pEntity', type: 'PTR', c: 'LPHSE_EXEC_URL_ENTITY_INFO' },
    { name: 'dwExecUrlFlags', type: 'DWORD', c: 'DWORD' },
  ],
  HSE_EXEC_UNICODE_URL_USER_INFO: [
    { name: 'hImpersonationToken', type: 'HANDLE', c: 'HANDLE' },
    { name: 'pszCustomUserName', type: 'PTR', c: 'LPWSTR' },
    { name: 'pszCustomAuthType', type: 'PTR', c: 'LPSTR' },
  ],
  HSE_EXEC_UNICODE_URL_INFO: [
    { name: 'pszUrl', type: 'PTR', c: 'LPWSTR' },
    { name: 'pszMethod', type: 'PTR', c: 'LPSTR' },
    { name: 'pszChildHeaders', type: 'PTR', c: 'LPSTR' },
    { name: 'pUserInfo', type: 'PTR', c: 'LPHSE_EXEC_UNICODE_URL_USER_INFO' },
    { name: 'pEntity', type: 'PTR', c: 'LPHSE_EXEC_URL_ENTITY_INFO' },
    { name: 'dwExecUrlFlags', type: 'DWORD', c: 'DWORD' },
  ],
  HSE_CUSTOM_ERROR_INFO: [
    { name: 'pszStatus', type: 'PTR', c: 'CHAR*' },
    // Followed by a 2-byte hole: fAsync is at 12 on x64, 8 on ia32 (ISAPI.md §13 item 1).
    { name: 'uHttpSubError', type: 'USHORT', c: 'USHORT' },
    { name: 'fAsync', type: 'BOOL', c: 'BOOL' },
  ],
  // 8-aligned even on ia32 because of the ULONGLONGs; arrays of it have a 24-byte stride on ia32, 32 on x64
  // (ISAPI.md §13 item 2). getAbi() forces the 8-alignment explicitly, see koffiElementType().
  HSE_VECTOR_ELEMENT: [
    { name: 'ElementType', type: 'DWORD', c: 'DWORD' },
    { name: 'pvContext', type: 'PTR', c: 'PVOID' },
    { name: 'cbOffset', type: 'ULONGLONG', c: 'ULONGLONG' },
    { name: 'cbSize', type: 'ULONGLONG', c: 'ULONGLONG' },
  ],
  HSE_RESPONSE_VECTOR: [
    { name: 'dwFlags', type: 'DWORD', c: 'DWORD' },
    { name: 'pszStatus', type: 'PTR', c: 'LPSTR' },
    { name: 'pszHeaders', type: 'PTR', c: 'LPSTR' },
    { name: 'nElementCount', type: 'DWORD', c: 'DWORD' },
    { name: 'lpElementArray', type: 'PTR', c: 'LPHSE_VECTOR_ELEMENT' },
  ],
  // From wincrypt.h; only used embedded in CERT_CONTEXT_EX (HSE_REQ_GET_CERT_INFO_EX, ISAPI.md §10).
  CERT_CONTEXT: [
    { name: 'dwCertEncodingType', type: 'DWORD', c: 'DWORD' },
    { name: 'pbCertEncoded', type: 'PTR', c: 'BYTE*' },
    { name: 'cbCertEncoded', type: 'DWORD', c: 'DWORD' },
    { name: 'pCertInfo', type: 'PTR', c: 'PCERT_INFO' },
    { name: 'hCertStore', type: 'HANDLE', c: 'HCERTSTORE' },
  ],
  CERT_CONTEXT_EX: [
    // By value, not a pointer: its members sit at 0..40 (x64) / 0..20 (ia32) of CERT_CONTEXT_EX.
    { name: 'CertContext', type: 'CERT_CONTEXT', c: 'CERT_CONTEXT' },
    { name: 'cbAllocated', type: 'DWORD', c: 'DWORD' },
    { name: 'dwCertificateFlags', type: 'DWORD', c: 'DWORD' },
  ],
  HSE_TRACE_INFO: [
    { name: 'fTraceRequest', type: 'BOOL', c: 'BOOL' },
    { name: 'TraceContextId', type: 'BYTE[16]', c: 'BYTE[16]' },
    { name: 'dwReserved1', type: 'DWORD', c: 'DWORD' },
    { name: 'dwReserved2', type: 'DWORD', c: 'DWORD' },
  ],
} as const satisfies { readonly [S in AbiStructName]: readonly AbiFieldDef[] };

export type AbiStructDefs = typeof STRUCT_DEFS;
/** Field names of struct `S`, as a union of literals (so `abi.offsets.EXTENSION_CONTROL_BLOCK.lpszMethod` type-checks). */
export type AbiFieldName<S extends AbiStructName> = AbiStructDefs[S][number]['name'];

/**
 * koffi prototype strings. `__stdcall` everywhere: WINAPI is __stdcall on ia32, where a cdecl callback corrupts the
 * stack on its first call (ISAPI.md §1, §13 item 4); koffi ignores it on x64.
 *
 * The "library" forms are what the extension side calls through: koffi marshals a JS string for `const char *`, and a
 * `Uint32Array`/`Buffer` for `uint32_t *` is passed BY ADDRESS, so the callee's writes are visible afterwards
 * (checked by experiment with koffi 3.3.4 and asserted in test/ecb/abi.x64.test.ts: a registered raw callback that did
 * `koffi.encode(p, 'uint32_t', 4242)` through a `uint32_t *` changed `u32[0]` to 4242). A plain JS array `[n]` is
 * NOT written back with this undecorated `uint32_t *` (koffi copies it into its call heap, koffi.md 6d), so callers
 * must pass a Uint32Array (also the cheapest form, koffi.md pitfall 9).
 *
 * ServerSupportFunction keeps lpvBuffer/lpdwSize/lpdwDataType as raw `void *`: depending on dwHSERequest they carry a
 * function pointer, a context value, a BOOL by value, or an output HANDLE (ISAPI.md §10, §13 item 17).
 *
 * The `*_raw` forms are the same ABI with every pointer as `void *`: an emulated host registers its callbacks with
 * them (koffi.register) so that it receives plain addresses (BigInt) to read and write with koffi.decode/encode.
 * PFN_HSE_IO_COMPLETION and the three entry points are already all-`void *`, so they serve both sides.
 */
export const PROTO_SIGNATURES = {
  GetServerVariable:
    'int __stdcall GetServerVariable(void *hConn, const char *lpszVariableName, void *lpvBuffer, uint32_t *lpdwSize)',
  WriteClient: 'int __stdcall WriteClient(void *ConnID, void *Buffer, uint32_t *lpdwBytes, uint32_t dwReserved)',
  ReadClient: 'int __stdcall ReadClient(void *ConnID, void *lpvBuffer, uint32_t *lpdwSize)',
  ServerSupportFunction:
    'int __stdcall ServerSupportFunction(void *hConn, uint32_t dwHSERequest, void *lpvBuffer, void *lpdwSize, void *lpdwDataType)',
  PFN_HSE_IO_COMPLETION: 'void __stdcall PFN_HSE_IO_COMPLETION(void *pECB, void *pContext, uint32_t cbIO, uint32_t dwError)',
  GetExtensionVersion: 'int __stdcall GetExtensionVersion(void *pVer)',
  HttpExtensionProc: 'uint32_t __stdcall HttpExtensionProc(void *pECB)',
  TerminateExtension: 'int __stdcall TerminateExtension(uint32_t dwFlags)',

  GetServerVariable_raw:
    'int __stdcall GetServerVariable_raw(void *hConn, void *lpszVariableName, void *lpvBuffer, void *lpdwSize)',
  WriteClient_raw: 'int __stdcall WriteClient_raw(void *ConnID, void *Buffer, void *lpdwBytes, uint32_t dwReserved)',
  ReadClient_raw: 'int __stdcall ReadClient_raw(void *ConnID, void *lpvBuffer, void *lpdwSize)',
  ServerSupportFunction_raw:
    'int __stdcall ServerSupportFunction_raw(void *hConn, uint32_t dwHSERequest, void *lpvBuffer, void *lpdwSize, void *lpdwDataType)',
} as const;

export type AbiProtoName = keyof typeof PROTO_SIGNATURES;

// ---------------------------------------------------------------------------------------------------------------
// koffi declarations (lazy)
// ---------------------------------------------------------------------------------------------------------------

export type AbiOffsets = { readonly [S in AbiStructName]: { readonly [F in AbiFieldName<S>]: number } };

export interface Abi {
  /** `process.arch` the tables were computed for. */
  readonly arch: string;
  /** 8 on x64, 4 on ia32. */
  readonly pointerSize: number;
  /** The koffi struct types, declared under their C names (so prototypes may refer to e.g. `HSE_TF_INFO *`). */
  readonly types: { readonly [S in AbiStructName]: TypeObject };
  /** `offsets.S.f` = offsetof(S, f) for this process's arch. */
  readonly offsets: AbiOffsets;
  readonly sizes: { readonly [S in AbiStructName]: number };
  readonly aligns: { readonly [S in AbiStructName]: number };
  /** koffi prototypes, see PROTO_SIGNATURES. Use with koffi.decode(fnPtr, proto) (once per pointer) or koffi.register. */
  readonly protos: { readonly [P in AbiProtoName]: TypeObject };
}

let abi: Abi | null = null;

const SCALAR_KOFFI: Readonly<Record<AbiScalarType, string>> = {
  DWORD: 'uint32_t',
  BOOL: 'int32_t',
  USHORT: 'uint16_t',
  ULONGLONG: 'uint64_t',
  // Pointers are BigInts in koffi 3 (koffi.md pitfall 12); strings behind them are read explicitly by the caller.
  HANDLE: 'void *',
  PTR: 'void *',
};

const ARRAY_RE = /^(CHAR|WCHAR|BYTE)\[(\d+)\]$/;

type MemberSpec = string | TypeObject | [number, string | TypeObject];

function koffiElementType(k: Koffi, t: AbiElementType, built: Partial<Record<AbiStructName, TypeObject>>): MemberSpec {
  if (t === 'ULONGLONG') {
    // A ULONGLONG is 8-aligned inside structs on ia32 as well (MSVC/MinGW; ISAPI.md §1, §13 item 2). koffi takes the
    // alignment from the compiler it was built with, so we state it explicitly instead of relying on that.
    return [8, SCALAR_KOFFI.ULONGLONG];
  }
  if (t in SCALAR_KOFFI) return SCALAR_KOFFI[t as AbiScalarType];
  const m = ARRAY_RE.exec(t);
  if (m) {
    const n = Number(m[2]);
    // CHAR[]: koffi decodes to a JS string (hint 'String'); WCHAR[]: char16_t, never wchar_t (UTF-32 on Linux,
    // koffi.md Experiment 5); BYTE[]: decodes to a Uint8Array.
    if (m[1] === 'CHAR') return k.array('char', n);
    if (m[1] === 'WCHAR') return k.array('char16_t', n);
    return k.array('uint8_t', n);
  }
  const nested = built[t as AbiStructName];
  if (!nested) throw new Error(`abi: STRUCT_DEFS uses ${t} before declaring it`);
  return nested;
}

/** A comparable description of a koffi type, to decide whether an existing declaration is the same as ours. */
function fingerprint(k: Koffi, t: TypeObject): string {
  const info = k.type(t);
  const parts = [`${info.primitive}:${info.size}:${info.alignment}`];
  if (info.members) {
    for (const [name, m] of Object.entries(info.members)) parts.push(`${name}@${m.offset}:${m.type.name}`);
  }
  if (info.proto) {
    parts.push(`ret:${info.proto.result.name}`);
    // koffi 3.3.4 reports each argument as { type, direction }, although its typings say TypeObject; accept both.
    // (The calling convention is not introspectable; the names we declare always use __stdcall.)
    for (const a of info.proto.arguments as unknown[]) {
      const arg = a as { type?: TypeObject; direction?: string; name?: string };
      parts.push(`arg:${arg.type?.name ?? arg.name ?? '?'}:${arg.direction ?? ''}`);
    }
  }
  return parts.join('|');
}

function isDuplicateName(e: unknown): boolean {
  // Not `instanceof Error`: koffi's native errors come from the main realm, which is not the realm of code running
  // in a vm context (jest runs every test file in one), so instanceof is false there.
  const message = typeof e === 'object' && e !== null ? (e as { message?: unknown }).message : undefined;
  return typeof message === 'string' && /Duplicate type name/i.test(message);
}

/**
 * koffi type names are global to the thread (a second koffi.struct('X', ...) throws "Duplicate type name"), and this
 * module can be evaluated more than once per thread (a bundle plus a second copy of the package, jest.resetModules).
 * On a clash we reuse the existing type if it is identical to ours, else fail loudly: a different layout under the
 * same name would silently corrupt memory.
 */
function declare(k: Koffi, name: string, make: (named: boolean) => TypeObject): TypeObject {
  try {
    return make(true);
  } catch (e) {
    if (!isDuplicateName(e)) throw e;
    const existing = k.type(name);
    if (fingerprint(k, existing) === fingerprint(k, make(false))) return existing;
    throw new IsapiError(
      ErrorCodes.FFI_UNAVAILABLE,
      `koffi type ${name} is already declared in this thread with a different layout or signature than isapi-http needs`,
      { cause: e },
    );
  }
}

function build(): Abi {
  const k = getKoffi();
  const structNames = Object.keys(STRUCT_DEFS) as AbiStructName[];

  const types: Partial<Record<AbiStructName, TypeObject>> = {};
  const offsets: Record<string, Record<string, number>> = {};
  const sizes: Partial<Record<AbiStructName, number>> = {};
  const aligns: Partial<Record<AbiStructName, number>> = {};

  for (const s of structNames) {
    const fields: readonly AbiFieldDef[] = STRUCT_DEFS[s];
    const members: Record<string, MemberSpec> = {};
    for (const f of fields) members[f.name] = koffiElementType(k, f.type, types);
    const t = declare(k, s, (named) => (named ? k.struct(s, members) : k.struct(members)));
    types[s] = t;
    sizes[s] = k.sizeof(t);
    aligns[s] = k.alignof(t);
    const table: Record<string, number> = {};
    for (const f of fields) table[f.name] = k.offsetof(t, f.name);
    offsets[s] = Object.freeze(table);
  }

  const protos: Partial<Record<AbiProtoName, TypeObject>> = {};
  for (const [p, sig] of Object.entries(PROTO_SIGNATURES) as [AbiProtoName, string][]) {
    // The anonymous twin (same text without the name) is only built on a name clash, for the comparison.
    protos[p] = declare(k, p, (named) => k.proto(named ? sig : sig.replace(`__stdcall ${p}(`, '__stdcall (')));
  }

  return Object.freeze({
    arch: process.arch,
    pointerSize: k.sizeof('void *'),
    types: Object.freeze(types) as Abi['types'],
    offsets: Object.freeze(offsets) as unknown as AbiOffsets,
    sizes: Object.freeze(sizes) as Abi['sizes'],
    aligns: Object.freeze(aligns) as Abi['aligns'],
    protos: Object.freeze(protos) as Abi['protos'],
  });
}

/**
 * The koffi declarations and layout tables for this process. The first call loads koffi (through ./koffi.js, which
 * configures it first) and declares every type; later calls return the same object.
 */
export function getAbi(): Abi {
  if (!abi) abi = build();
  return abi;
}
