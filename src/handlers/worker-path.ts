/**
 * Where a worker thread's entry file is. Built: `dist/<name>.js` (ESM) or `dist/<name>.cjs` (CJS), next to the
 * chunks (tsup.config.ts lists them as entries). From sources (the repository's tests): `src/handlers/<name>-entry.ts`,
 * run through the swc loader hooks in tools/ts-register.mjs.
 */
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export function workerFile(name: 'worker' | 'watchdog'): { filename: string; execArgv: string[] } {
  const here = typeof __filename === 'string' ? __filename : '';
  if (here.endsWith('.ts')) {
    const register = resolve(dirname(here), '../../tools/ts-register.mjs');
    return { filename: join(dirname(here), `${name}-entry.ts`), execArgv: ['--import', pathToFileURL(register).href] };
  }
  return { filename: join(dirname(here), here.endsWith('.cjs') ? `${name}.cjs` : `${name}.js`), execArgv: [] };
}
