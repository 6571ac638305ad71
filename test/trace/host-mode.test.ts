/**
 * Host mode's trace channel, observed in a child process: entered through the native GetExtensionVersion, it
 * captures console and stdout/stderr into a channel named after the app pool, puts the library's diagnostics there,
 * and undoes all of it once TerminateExtension has drained. `trace: false` turns it off; outside host mode nothing
 * is captured at all (the other trace tests run with the console untouched).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { TraceRecord } from '../../src/trace/record.js';
import { uniqueName } from './helpers.js';

const root = join(__dirname, '../..');

function scenario(mode: 'default' | 'off', pool: string): Record<string, unknown> & { records: TraceRecord[] } {
  const out = execFileSync(process.execPath, ['--import', './tools/ts-register.mjs', 'test/trace/fixtures/host-scenario.ts', mode], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, APP_POOL_ID: pool },
  });
  return JSON.parse(out.trim().split('\n').pop() as string);
}

test('in host mode, console, raw writes and the library diagnostics go to the app pool\'s channel, and all is undone at the end', () => {
  const pool = uniqueName('Pool');
  const f = scenario('default', pool);
  expect(f.name).toBe(pool);
  expect(f.capturedBeforeHostMode).toBe(false); // asking for the native entry points changes nothing yet
  expect(f.capturedInHostMode).toBe(true);
  expect(f.sameInHostMode).toBe(false);
  expect(f.log).toBe('ok');
  expect(f.throwLater).toBe('500 Internal Server Error');

  const records = f.records;
  const find = (p: (r: TraceRecord) => boolean): TraceRecord | undefined => records.find(p);
  expect(records[0]?.msg).toMatch(new RegExp(`^host mode: tracing to "${pool}"`));
  const hi = find((r) => r.msg === 'the app says hi');
  expect(hi).toMatchObject({ source: 'console', level: 'info', requestId: expect.any(String) });
  expect(find((r) => r.source === 'request' && r.url === '/log')).toMatchObject({ status: 200, handler: 'simple', requestId: hi?.requestId });
  // The contained async error: recorded with its stack, as 'uncaught', and as the 500 of its request.
  const uncaught = find((r) => r.kind === 'uncaught');
  expect(uncaught?.err?.stack).toMatch(/async boom in host mode\n\s+at /);
  expect(find((r) => r.source === 'request' && r.url === '/throw-later')).toMatchObject({ status: 500, requestId: uncaught?.requestId });
  expect(find((r) => r.msg === 'a raw write')).toMatchObject({ source: 'stdout', level: 'info' });
  expect(find((r) => r.msg === 'a raw error write')).toMatchObject({ source: 'stderr', level: 'warn' });
  expect(records[records.length - 1]?.msg).toBe('host mode ends');

  expect(f.capturedAfter).toBe(false);
  expect(f.restoredAfter).toBe(true);
  expect(f.socketAfter).toBe(false); // the channel host mode created is closed
  expect(f.collector).toMatchObject({ end: 'closed', channel: { name: pool } });
});

test('trace: false keeps host mode away from the console', () => {
  const f = scenario('off', uniqueName('Off'));
  expect(f.capturedInHostMode).toBe(false);
  expect(f.sameInHostMode).toBe(true);
  expect(f.restoredAfter).toBe(true);
  expect(f.records).toEqual([]);
});
