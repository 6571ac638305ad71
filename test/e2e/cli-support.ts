/**
 * Running the `isapi-http` command from source in a child process (through tools/ts-register.mjs, so no build is
 * needed), with its output collected line by line. Shared by the CLI tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export const ROOT = resolve(__dirname, '../..');

export interface Cli {
  readonly child: ChildProcess;
  readonly out: string[];
  readonly err: string[];
  readonly exited: Promise<number | null>;
  /** Resolves with the first stdout line matching. */
  line(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

export function runCli(args: string[]): Cli {
  const child = spawn(process.execPath, ['--import', './tools/ts-register.mjs', 'src/cli/main.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  const err: string[] = [];
  const waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  let pending = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) {
      out.push(l);
      for (const w of [...waiters]) {
        const m = w.pattern.exec(l);
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => err.push(chunk));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    out,
    err,
    exited,
    line(pattern, timeoutMs = 20_000) {
      const already = out.map((l) => pattern.exec(l)).find((m) => m);
      if (already) return Promise.resolve(already);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line ${pattern} in:\n${out.join('\n')}\n${err.join('')}`)), timeoutMs);
        waiters.push({
          pattern,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
      });
    },
  };
}
