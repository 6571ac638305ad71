'use strict';
/**
 * The Windows suite's harness: plain CommonJS for the Windows node.exe under Wine (no jest there).
 *
 * Output (scripts/windows/run.sh checks it line by line; exit codes alone prove nothing, because an x86
 * node.exe without wine32 prints nothing and exits 0):
 *   # runtime suite=<name> platform=win32 arch=<arch> node=<version> ...
 *   1..N
 *   ok <i> - <name> # <details> (<ms> ms)        one per passing test
 *   not ok <i> - <name>: <error>                 one per failing test, the stack on following "# " lines
 *   N passed, M failed                           last line
 *
 * Environment (run.sh sets it): ISAPI_WIN_STAGE = the win32 stage (package.json + dist/ + node_modules with
 * koffi's Windows package + internals.cjs), ISAPI_WIN_RUN = the run directory (DLLs, logs), ISAPI_WIN_ARCH = the
 * arch this runtime must be (x64 or ia32).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createRequire } = require('node:module');

/** A Unix path as node.exe under Wine sees it: drive Z: is the Unix root. */
function winPath(p) {
  return process.platform === 'win32' && p.startsWith('/') ? `Z:${p.replace(/\//g, '\\')}` : p;
}

function envPath(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the suite through scripts/windows/run.sh`);
  return winPath(v);
}

const tests = [];

/**
 * One output line, written straight to fd 1. Not console.log: in host mode (a native host called
 * GetExtensionVersion) the library captures console and process.stdout for its trace channel (src/trace/capture.ts),
 * and the lines of the tests that run then would never reach the log. Synchronous, so a crash loses nothing.
 */
function out(line) {
  fs.writeSync(1, `${line}\n`);
}

/**
 * Register a test. `fn` may be async and may return a string: it is printed as the test's detail.
 * `knownBug: { id, arch, match }`: a library bug documented in docs/windows.md, expected to fail on `arch` (all
 * arches when omitted) with an error matching `match` until it is fixed. That failure prints
 * `ok ... # TODO known bug <id>: <error>` (the lane stays green but lists it); any other failure is a failure;
 * once it passes there, the line says so, so that the marker gets removed.
 */
function test(name, fn, { timeoutMs = 120_000, knownBug = null } = {}) {
  tests.push({ name, fn, timeoutMs, knownBug });
}

class AssertionError extends Error {}

function assert(cond, message) {
  if (!cond) throw new AssertionError(typeof message === 'function' ? message() : message);
}

function equal(actual, expected, what) {
  if (actual !== expected) throw new AssertionError(`${what}: expected ${fmt(expected)}, got ${fmt(actual)}`);
}

function fmt(v) {
  return typeof v === 'bigint' ? `${v}n` : JSON.stringify(v);
}

function setup(suite) {
  const stage = envPath('ISAPI_WIN_STAGE');
  const run = envPath('ISAPI_WIN_RUN');
  const expectedArch = process.env.ISAPI_WIN_ARCH;
  out(
    `# runtime suite=${suite} platform=${process.platform} arch=${process.arch} node=${process.version} ` +
      `label=${process.env.ISAPI_WIN_LABEL ?? '?'} os=${os.release()} cpus=${os.cpus().length}`,
  );
  if (process.platform !== 'win32') throw new Error(`the Windows suite must run on win32, not ${process.platform}`);
  if (expectedArch && process.arch !== expectedArch) throw new Error(`expected a ${expectedArch} node.exe, this is ${process.arch}`);
  // Resolve packages from the stage, never from the repository's Linux node_modules.
  const requireStaged = createRequire(path.join(stage, 'package.json'));
  const internals = require(path.join(stage, 'internals.cjs'));
  // Configure koffi (max_async_calls) before anything loads a library through it: koffi.md §3c.
  const koffi = internals.getKoffi();
  return { stage, run, requireStaged, internals, koffi, fixture: readFixture(), sabotage: process.env.ISAPI_WIN_SABOTAGE ?? '' };
}

function readFixture() {
  return JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'isapi-abi.json'), 'utf8'));
}

function withTimeout(promise, ms, name) {
  let timer;
  return Promise.race([
    Promise.resolve(promise).finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${name}: timed out after ${ms} ms`)), ms);
    }),
  ]);
}

async function run() {
  out(`1..${tests.length}`);
  let passed = 0;
  let failed = 0;
  for (const [i, t] of tests.entries()) {
    const t0 = Date.now();
    const known = t.knownBug && (!t.knownBug.arch || t.knownBug.arch === process.arch) ? t.knownBug.id : null;
    try {
      const note = await withTimeout(
        (async () => t.fn())(),
        t.timeoutMs,
        t.name,
      );
      const fixed = known ? ` # known bug ${known} no longer reproduces here: remove its marker (docs/windows.md)` : '';
      out(`ok ${i + 1} - ${t.name}${note ? ` # ${note}` : ''}${fixed} (${Date.now() - t0} ms)`);
      passed++;
    } catch (error) {
      const text = String((error instanceof AssertionError ? error.message : error && error.stack) || error);
      if (known && t.knownBug.match.test(text)) {
        out(`ok ${i + 1} - ${t.name} # TODO known bug ${known} (docs/windows.md), still failing: ${text.split('\n').join('\n# ')}`);
        passed++;
      } else {
        out(`not ok ${i + 1} - ${t.name}: ${text.split('\n').join('\n# ')}`);
        failed++;
      }
    }
  }
  out(`${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
  // Whatever a failed test left behind (a host thread, a timer) must not keep the process: exit soon.
  setTimeout(() => {
    out('# handles were still open 3 s after the last test; exiting');
    process.exit(process.exitCode);
  }, 3000).unref();
}

/** Run main(): a setup failure still prints a plan and a failing summary, so the lane sees a clear reason. */
function main(fn) {
  Promise.resolve()
    .then(fn)
    .then(run)
    .catch((error) => {
      out('1..1');
      out(`not ok 1 - suite setup: ${String((error && error.stack) || error).split('\n').join('\n# ')}`);
      out('0 passed, 1 failed');
      process.exitCode = 1;
    });
}

module.exports = { test, assert, equal, setup, main, winPath, AssertionError };
