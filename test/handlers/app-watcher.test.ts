/**
 * What `watch` watches (app-watcher.ts): `true` is the app module's directory tree without node_modules and dot
 * names; a list takes paths, globs and `!` exclusions relative to the app module's directory. Changes are reported
 * once per burst, after the debounce.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AppWatcher, planWatch, type WatchOption } from '../../src/handlers/app-watcher.js';
import { ErrorCodes } from '../../src/errors.js';

let dir: string;
let watcher: AppWatcher | null = null;
beforeEach(() => {
  // The app directory itself sits below a dot directory: the rule applies below the watched directory only.
  dir = join(mkdtempSync(join(tmpdir(), 'isapi-watch-')), '.apps', 'shop');
  for (const d of ['lib/deep', 'node_modules/dep', 'lib/node_modules/x', '.git', 'lib/.cache', 'views', 'public/img']) mkdirSync(join(dir, d), { recursive: true });
  for (const f of ['app.mjs', 'lib/a.mjs', 'lib/deep/b.mjs', 'node_modules/dep/index.js', 'lib/node_modules/x/i.js', '.git/HEAD', 'lib/.cache/c', '.env', 'views/home.hbs', 'public/img/logo.svg', 'notes.txt']) {
    writeFileSync(join(dir, f), 'v0');
  }
});
afterEach(async () => {
  await watcher?.close();
  watcher = null;
  rmSync(join(dir, '../..'), { recursive: true, force: true });
});

/** Watch with `option`, touch every file in `touch`, and resolve with the batches reported. */
async function changesFor(option: WatchOption, touch: readonly string[], debounceMs = 80): Promise<string[][]> {
  const plan = planWatch(pathToFileURL(join(dir, 'app.mjs')).href, option);
  const batches: string[][] = [];
  const errors: unknown[] = [];
  watcher = new AppWatcher(plan!, { debounceMs, onChange: (paths) => batches.push([...paths].sort()), onError: (e) => errors.push(e) });
  await watcher.ready;
  for (const f of touch) writeFileSync(join(dir, f), `v1 ${f}`);
  await new Promise((r) => setTimeout(r, debounceMs + 400));
  expect(errors).toEqual([]);
  return batches;
}

const ALL = ['app.mjs', 'lib/a.mjs', 'lib/deep/b.mjs', 'node_modules/dep/index.js', 'lib/node_modules/x/i.js', '.git/HEAD', 'lib/.cache/c', '.env', 'views/home.hbs', 'public/img/logo.svg', 'notes.txt'];
const rel = (batches: string[][]): string[] => batches.flat().map((p) => p.slice(dir.length + 1).split('\\').join('/'));

test('true: the app directory tree, without node_modules or dot names at any depth; one batch per burst', async () => {
  const batches = await changesFor(true, ALL);
  expect(batches).toHaveLength(1);
  expect(rel(batches).sort()).toEqual(['app.mjs', 'lib/a.mjs', 'lib/deep/b.mjs', 'notes.txt', 'public/img/logo.svg', 'views/home.hbs']);
});

test('node_modules is never opened: the watches do not grow with it', async () => {
  for (let i = 0; i < 200; i++) {
    mkdirSync(join(dir, `node_modules/pkg-${i}`));
    writeFileSync(join(dir, `node_modules/pkg-${i}/index.js`), '');
  }
  const watches = (): number => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;
  await new Promise((r) => setTimeout(r, 20)); // the previous test's closed handles, gone
  const baseline = watches();
  watcher = new AppWatcher(planWatch(pathToFileURL(join(dir, 'app.mjs')).href, true)!, { debounceMs: 50, onChange: () => undefined, onError: () => undefined });
  await watcher.ready;
  // 6 directories and 6 files are watched (chokidar watches a file it knows of, and its directory), not 400 more.
  expect(watches() - baseline).toBeGreaterThan(0);
  expect(watches() - baseline).toBeLessThanOrEqual(12);
  await watcher.close();
  // A closed fs watch handle leaves the active list once libuv has run its close callback: a turn later.
  await new Promise((r) => setTimeout(r, 20));
  expect(watches()).toBe(baseline);
});

test('a list: a directory, a glob, an explicit dotfile, and exclusions', async () => {
  const batches = await changesFor(['lib', 'views/*.hbs', '.env', '!lib/deep/**'], ALL);
  expect(rel(batches).sort()).toEqual(['.env', 'lib/a.mjs', 'views/home.hbs']);
});

test('a glob across the tree; a list of exclusions only watches the default tree minus them', async () => {
  expect(rel(await changesFor(['**/*.mjs'], ALL)).sort()).toEqual(['app.mjs', 'lib/a.mjs', 'lib/deep/b.mjs']);
  await watcher?.close();
  expect(rel(await changesFor(['!public/**', '!*.txt'], ALL)).sort()).toEqual(['app.mjs', 'lib/a.mjs', 'lib/deep/b.mjs', 'views/home.hbs']);
});

test('a new file in a new directory is seen; an empty list watches nothing', async () => {
  const plan = planWatch(pathToFileURL(join(dir, 'app.mjs')).href, true);
  const batches: string[][] = [];
  watcher = new AppWatcher(plan!, { debounceMs: 50, onChange: (p) => batches.push([...p]), onError: () => undefined });
  await watcher.ready;
  mkdirSync(join(dir, 'routes'));
  await new Promise((r) => setTimeout(r, 150));
  writeFileSync(join(dir, 'routes/new.mjs'), 'export default 1');
  const until = Date.now() + 3000;
  while (!batches.flat().includes(join(dir, 'routes/new.mjs')) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  expect(batches.flat()).toContain(join(dir, 'routes/new.mjs'));
  expect(planWatch(pathToFileURL(join(dir, 'app.mjs')).href, [])).toEqual({ root: dir, targets: [], excluded: null });
  expect(planWatch(pathToFileURL(join(dir, 'app.mjs')).href, false)).toBeNull();
});

test('close() stops reporting, even a burst already being debounced', async () => {
  const plan = planWatch(pathToFileURL(join(dir, 'app.mjs')).href, true);
  const batches: string[][] = [];
  watcher = new AppWatcher(plan!, { debounceMs: 300, onChange: (p) => batches.push([...p]), onError: () => undefined });
  await watcher.ready;
  writeFileSync(join(dir, 'app.mjs'), 'v2');
  const until = Date.now() + 2000;
  while (watcher.pending === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  expect(watcher.pending).toBe(1);
  await watcher.close();
  await new Promise((r) => setTimeout(r, 400));
  expect(batches).toEqual([]);
});

test('bad values are coded errors', () => {
  expect(() => planWatch(pathToFileURL(join(dir, 'app.mjs')).href, 'yes' as never)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  expect(() => planWatch('data:text/javascript,1', true)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
});
