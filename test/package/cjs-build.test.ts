/**
 * The built package, as users load it: `require('isapi-http')` (dist/index.cjs) and `import 'isapi-http'`
 * (dist/index.js). The other suites run the sources, so only this one sees what the bundler did to them.
 * Regression: docs/windows.md L1 — the CJS build turned the worker's `import(url)` into `require(url)`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../..');

beforeAll(() => {
  // CI builds before testing (.ci/run); a developer's checkout may not have built yet.
  if (!existsSync(join(root, 'dist/index.cjs')) || !existsSync(join(root, 'dist/worker.cjs'))) {
    execFileSync(process.execPath, [join(root, 'node_modules/tsup/dist/cli-default.js'), '--silent'], { cwd: root, stdio: 'ignore' });
  }
}, 120_000);

function run(file: string, source: string): { status: number | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'isapi-dist-'));
  writeFileSync(join(dir, 'app.cjs'), "module.exports = (req, res) => res.end('cjs app');\n");
  writeFileSync(join(dir, 'app.mjs'), "export default (req, res) => res.end('esm app');\n");
  writeFileSync(join(dir, 'named.mjs'), "export const site = (req, res) => res.end('named');\n");
  writeFileSync(join(dir, file), source.replaceAll('$ROOT', JSON.stringify(root)));
  const r = spawnSync(process.execPath, [join(dir, file)], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const program = (load: string): string => `
${load}
const { pathToFileURL } = require('node:url');
const path = require('node:path');
(async () => {
  for (const [file, exportName] of [['app.cjs'], ['app.mjs'], ['named.mjs', 'site']]) {
    const handler = new lib.ThreadPoolHandler(pathToFileURL(path.join(__dirname, file)), { workers: 1, export: exportName, onError: () => {} });
    await handler.ready();
    await handler.terminate();
    console.log(file + ' loaded');
  }
})().catch((error) => { console.error(error); process.exit(1); });
`;

test('CJS build: ThreadPoolHandler workers load CJS and ESM app modules, default and named exports', () => {
  const r = run('main.cjs', program('const lib = require(path_join($ROOT, "dist/index.cjs"));').replace('path_join', 'require("node:path").join'));
  expect(r.stderr).toBe('');
  expect(r.stdout.split('\n').filter(Boolean)).toEqual(['app.cjs loaded', 'app.mjs loaded', 'named.mjs loaded']);
  expect(r.status).toBe(0);
});

test('ESM build: the same, through import', () => {
  const source = program('').replace(
    /^/,
    `import { createRequire } from 'node:module'; const require = createRequire(import.meta.url); const __dirname = ${'import.meta.dirname ?? require("node:path").dirname(new URL(import.meta.url).pathname)'};\nconst lib = await import(require('node:url').pathToFileURL(require('node:path').join($ROOT, 'dist/index.js')).href);\n`,
  );
  const r = run('main.mjs', source);
  expect(r.stderr).toBe('');
  expect(r.stdout.split('\n').filter(Boolean)).toEqual(['app.cjs loaded', 'app.mjs loaded', 'named.mjs loaded']);
  expect(r.status).toBe(0);
});
