/**
 * Import an app module the way a user wrote it: ESM or CJS, a default export or a named one. Used by worker
 * threads (ThreadPoolHandler) and by the CLI. A CJS module's `module.exports` arrives as the ESM default, and a
 * transpiled module may nest it once more under `default`; both are unwrapped.
 */
import { pathToFileURL } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import { IsapiError, ErrorCodes } from '../errors.js';

export function moduleUrl(module: URL | string, base = process.cwd()): string {
  if (module instanceof URL) return module.href;
  if (typeof module !== 'string' || module.length === 0) throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, 'the app module must be a URL or a path');
  if (/^[a-z][a-z0-9+.-]*:/i.test(module) && !/^[a-z]:[\\/]/i.test(module)) return module;
  return pathToFileURL(isAbsolute(module) ? module : resolve(base, module)).href;
}

/**
 * A real `import()`, kept out of the bundler's sight. tsup's CJS build runs its chunks through sucrase, which turns
 * `import(url)` into `require(url)`; `require` cannot take a `file://` URL nor load ESM (docs/windows.md L1).
 * Code inside `new Function` is compiled by V8 as written, so the CJS build imports like the ESM one.
 */
const nativeImport = ((): ((url: string) => Promise<unknown>) | undefined => {
  try {
    return new Function('url', 'return import(url)') as (url: string) => Promise<unknown>;
  } catch {
    return undefined; // --disallow-code-generation-from-strings: the bundled form below is all there is
  }
})();

async function importModule(url: string): Promise<unknown> {
  if (nativeImport !== undefined) {
    try {
      return await nativeImport(url);
    } catch (error) {
      // Inside a vm context with no module linker (jest runs the sources that way), V8 refuses `import()` in
      // `new Function` code; the transpiled `import()` below is the one that context supports.
      if ((error as NodeJS.ErrnoException)?.code !== 'ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING') throw error;
    }
  }
  return import(url);
}

export async function loadApp(url: string, exportName = 'default'): Promise<unknown> {
  let ns: Record<string, unknown>;
  try {
    ns = (await importModule(url)) as Record<string, unknown>;
  } catch (cause) {
    throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, `could not load the app module ${url}: ${String((cause as Error)?.message ?? cause)}`, { cause });
  }
  let value = ns[exportName];
  if (exportName === 'default' && value !== null && typeof value === 'object' && 'default' in (value as object) && Object.keys(value as object).length <= 2) {
    // `exports.default = app` compiled to CJS, then imported from ESM: { default: { default: app } }.
    const inner = (value as { default: unknown }).default;
    if (inner !== undefined) value = inner;
  }
  if (value === undefined) {
    const names = Object.keys(ns).filter((k) => k !== '__esModule');
    throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, `the module ${url} has no export named ${JSON.stringify(exportName)} (it exports: ${names.join(', ') || 'nothing'})`);
  }
  return value;
}
