/**
 * ESM loader hooks for the benches (see register.mjs): `.ts` files are transpiled with swc to ES2022 ESM, the
 * same target jest uses, and a relative `./x.js` imported from a `.ts` file resolves to `./x.ts` when that exists
 * (the sources use NodeNext-style specifiers).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transformSync } from '@swc/core';

export async function resolve(specifier, context, nextResolve) {
  if (/^\.{1,2}\//.test(specifier) && specifier.endsWith('.js') && context.parentURL?.endsWith('.ts')) {
    const url = new URL(`${specifier.slice(0, -3)}.ts`, context.parentURL);
    if (existsSync(url)) return { url: url.href, format: 'module', shortCircuit: true };
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const filename = fileURLToPath(url);
  const { code } = transformSync(await readFile(filename, 'utf8'), {
    filename,
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'es6' },
    sourceMaps: 'inline',
  });
  // The sources use __filename/__dirname where the built package gets them from tsup's ESM shims (worker paths,
  // createRequire): provide the same shim here, so that code run from source behaves as the build does.
  const shim = `import { fileURLToPath as __shimPath } from 'node:url'; const __filename = __shimPath(import.meta.url); const __dirname = __filename.replace(/[\\\\/][^\\\\/]*$/, '');\n`;
  // A hashbang must stay the first line (src/cli/main.ts has one for the bin).
  const bang = code.startsWith('#!') ? code.slice(0, code.indexOf('\n') + 1) : '';
  return { format: 'module', source: bang + shim + code.slice(bang.length), shortCircuit: true };
}
