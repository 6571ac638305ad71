/**
 * What ThreadPoolHandler's `watch` option watches, and when it says "reload" (issue 7 item 2).
 *
 * `watch: true` watches the app module's directory and everything below it, except any directory named
 * `node_modules` and any file or directory whose name starts with `.` (.git, .env, .vscode, an editor's .swp, ...),
 * at any depth below the watched directory. The watched directory itself may sit anywhere (even inside a dot
 * directory): the rule applies to the names *below* it.
 *
 * `watch: [...]` lists what to watch, each entry relative to the app module's directory (never to the process's
 * working directory, which inside IIS is system32):
 * - a path without glob characters: a file (watched alone, whatever its name) or a directory (its tree, with the
 *   same exclusions as `true` below it);
 * - a glob (`src/**\/*.js`, `views/*.hbs`, `{lib,routes}/**`), with forward slashes on every platform: the files it
 *   matches below its static base directory (`src`, `views`, the app directory). `*` and `**` never match names that
 *   start with `.`, and node_modules below the base is skipped; name one in the base to watch inside it
 *   (`node_modules/my-lib/**\/*.js`);
 * - `!glob`: exclude what it matches (relative to the app module's directory) from every other entry. A list made
 *   only of exclusions watches the same tree as `true`, minus those.
 * An empty list watches nothing.
 *
 * Why chokidar v4 and not the alternatives:
 * - `fs.watch(dir, { recursive: true })` is native on Windows and macOS, but on Linux, Node 20 implements it in JS
 *   (lib/internal/fs/recursive_watch.js): it walks the whole tree synchronously at start and opens one inotify watch
 *   per file *and* per directory, node_modules included, since it has no way to skip a subtree. An app with a
 *   30 000-file node_modules would stall its main thread and exhaust the inotify limit before serving anything.
 * - @parcel/watcher (in node_modules through jest) is a native addon installed as per-platform optional packages:
 *   our lockfile can only list the ones the registry serves here (the CI note of commit e494bf0), so a Windows
 *   install could miss its binary, and it would be a second native addon inside w3wp.
 * - chokidar v4 is plain JS with one dependency (readdirp), watches per directory and asks `ignored` before it
 *   descends (so node_modules is never opened), folds editors' atomic saves (unlink + add) into one change, and
 *   survives Windows' EPERM on a deleted directory. v5 is ESM-only; this package also ships a CJS build.
 * Globs: picomatch, since chokidar v4 dropped glob support (picomatch is the matcher chokidar v3 used).
 */
import { isAbsolute, relative, resolve, sep, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Stats } from 'node:fs';
import { watch as chokidarWatch, type FSWatcher } from 'chokidar';
import picomatch from 'picomatch';
import { invalidArgument } from '../errors.js';

/** ThreadPoolHandler's `watch` option. */
export type WatchOption = boolean | readonly string[];

/** Default quiet time after the last change before a reload starts, in ms: one editor save is often 2–4 events. */
export const DEFAULT_WATCH_DEBOUNCE_MS = 200;

interface WatchTarget {
  /** Absolute file or directory that chokidar watches. */
  readonly base: string;
  /** For a glob: whether a file's path relative to `base` (forward slashes) matches it. */
  readonly match: ((rel: string) => boolean) | null;
}

/** What to watch, resolved once against the app module's directory. */
export interface WatchPlan {
  /** The app module's directory: what relative entries and `!` exclusions are resolved against. */
  readonly root: string;
  readonly targets: readonly WatchTarget[];
  /** `!` entries, matched against paths relative to `root` (forward slashes). */
  readonly excluded: ((rel: string) => boolean) | null;
}

const posix = (path: string): string => (sep === '/' ? path : path.split(sep).join('/'));

/** True when `rel` (relative to a watched base) passes through node_modules or a dot name. */
function hiddenBelow(rel: string): boolean {
  if (rel === '') return false;
  for (const part of rel.split(sep)) if (part === 'node_modules' || (part.startsWith('.') && part !== '.' && part !== '..')) return true;
  return false;
}

/**
 * Resolve the option against the app module (a file: URL). Throws ERR_ISAPI_INVALID_ARGUMENT for a value that is
 * neither a boolean nor a list of non-empty strings, or for an app module that is not a file.
 */
export function planWatch(appUrl: string, watch: WatchOption): WatchPlan | null {
  if (watch === false) return null;
  if (watch !== true && !(Array.isArray(watch) && watch.every((e) => typeof e === 'string' && e.trim() !== ''))) {
    throw invalidArgument(`ThreadPoolHandler option watch must be true, false or a list of paths and globs, got ${JSON.stringify(watch)}`);
  }
  if (!appUrl.startsWith('file:')) throw invalidArgument(`ThreadPoolHandler option watch needs an app module on disk (a path or a file: URL), got ${appUrl}`);
  const root = dirname(fileURLToPath(appUrl));
  if (watch === true) return { root, targets: [{ base: root, match: null }], excluded: null };
  const entries = watch as readonly string[];
  if (entries.length === 0) return { root, targets: [], excluded: null };
  const negated = entries.filter((e) => e.startsWith('!')).map((e) => e.slice(1));
  const positive = entries.filter((e) => !e.startsWith('!'));
  const targets: WatchTarget[] = [];
  for (const entry of positive.length > 0 ? positive : ['.']) {
    const scan = picomatch.scan(entry);
    if (!scan.isGlob) {
      targets.push({ base: resolve(root, entry), match: null });
      continue;
    }
    const isMatch = picomatch(scan.glob, { dot: false });
    targets.push({ base: resolve(root, scan.base === '' ? '.' : scan.base), match: (rel) => isMatch(rel) });
  }
  const excluded = negated.length > 0 ? picomatch(negated, { dot: true }) : null;
  return { root, targets, excluded: excluded ? (rel) => excluded(rel) : null };
}

/** chokidar's `ignored`: true for what must not be watched below `target` (see the top of this file). */
function ignoredBy(plan: WatchPlan, target: WatchTarget, path: string, stats?: Stats): boolean {
  const rel = relative(target.base, path);
  if (rel === '') return false; // the target itself: its name may start with '.' (an explicit `.env`)
  if (rel.startsWith('..') || isAbsolute(rel)) return false; // not below the target: chokidar's own business
  if (hiddenBelow(rel)) return true;
  if (excludedBy(plan, path)) return true;
  // Files that the glob does not match are not watched at all; directories are, since a match may lie below.
  return target.match !== null && stats !== undefined && stats.isFile() && !target.match(posix(rel));
}

/** True when a `!` entry excludes `path`. */
function excludedBy(plan: WatchPlan, path: string): boolean {
  if (!plan.excluded) return false;
  const rel = relative(plan.root, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) && plan.excluded(posix(rel));
}

export interface AppWatcherOptions {
  /** Quiet time after the last change, in ms. */
  readonly debounceMs: number;
  /** The changed files (absolute paths) of one burst, after the quiet time. */
  readonly onChange: (paths: readonly string[]) => void;
  /** A watcher error (a directory that became unreadable, the OS limit on watches, ...). Watching goes on. */
  readonly onError: (error: unknown) => void;
}

// The watcher's state, out of reach of its users (and of `JSON.stringify`, structured clone, ...).
const kWatchers = Symbol('watchers');
const kPlan = Symbol('plan');
const kOptions = Symbol('options');
const kPending = Symbol('pending');
const kTimer = Symbol('timer');
const kClosed = Symbol('closed');
const kSeen = Symbol('seen');

export class AppWatcher {
  /** Resolves once the initial scan is over: changes made from then on are seen. Never rejects. */
  readonly ready: Promise<void>;
  private readonly [kWatchers]: FSWatcher[] = [];
  private readonly [kPlan]: WatchPlan;
  private readonly [kOptions]: AppWatcherOptions;
  private readonly [kPending] = new Set<string>();
  private [kTimer]: NodeJS.Timeout | null = null;
  private [kClosed] = false;

  constructor(plan: WatchPlan, options: AppWatcherOptions) {
    this[kPlan] = plan;
    this[kOptions] = options;
    const ready: Promise<void>[] = [];
    for (const target of plan.targets) {
      const watcher = chokidarWatch(target.base, {
        ignoreInitial: true,
        // Asked before chokidar reads a directory, so node_modules and dot directories are never even opened.
        ignored: (path: string, stats?: Stats) => ignoredBy(plan, target, path, stats),
      });
      watcher.on('all', (event, path) => {
        if (event !== 'addDir') this[kSeen](target, path);
      });
      watcher.on('error', (error) => {
        try {
          options.onError(error);
        } catch {
          // a failing logger must not stop the watching
        }
      });
      ready.push(new Promise((r) => watcher.once('ready', () => r())));
      this[kWatchers].push(watcher);
    }
    this.ready = Promise.all(ready).then(() => undefined);
  }

  /** Changes seen and not yet reported (the debounce is running). */
  get pending(): number {
    return this[kPending].size;
  }

  private [kSeen](target: WatchTarget, path: string): void {
    if (this[kClosed]) return;
    const absolute = resolve(path);
    const rel = relative(target.base, absolute);
    // chokidar may report a path it was asked about without stats (a change event): filter again, here.
    if (rel !== '' && (hiddenBelow(rel) || (target.match !== null && !target.match(posix(rel))))) return;
    if (excludedBy(this[kPlan], absolute)) return;
    this[kPending].add(absolute);
    if (this[kTimer]) clearTimeout(this[kTimer]);
    // Trailing debounce: one reload per burst, started once the files have been quiet for debounceMs.
    this[kTimer] = setTimeout(() => {
      this[kTimer] = null;
      const paths = [...this[kPending]];
      this[kPending].clear();
      if (this[kClosed] || paths.length === 0) return;
      try {
        this[kOptions].onChange(paths);
      } catch (error) {
        this[kOptions].onError(error);
      }
    }, this[kOptions].debounceMs);
  }

  /** Stop watching: every fs watcher is closed and no onChange follows. */
  async close(): Promise<void> {
    if (this[kClosed]) return;
    this[kClosed] = true;
    if (this[kTimer]) clearTimeout(this[kTimer]);
    this[kTimer] = null;
    this[kPending].clear();
    await Promise.all(this[kWatchers].splice(0).map((w) => w.close()));
  }
}
