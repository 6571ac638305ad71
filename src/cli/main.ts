#!/usr/bin/env node
/**
 * The `isapi-http` command (package.json "bin"). Exit codes: 0 after a clean stop, 2 for bad arguments (with a
 * message saying what was wrong), 1 for anything else (the app failed to load, the port is taken, ...).
 */
import { createRequire } from 'node:module';
import { parseCommand, USAGE, UsageError } from './args.js';
import { serve } from './serve.js';
import { runTraceCollector } from '../trace/collector.js';

function version(): string {
  const require = createRequire(import.meta.url);
  // dist/cli.js and src/cli/main.ts sit one and two levels below the package root.
  for (const candidate of ['../package.json', '../../package.json']) {
    try {
      const pkg = require(candidate) as { name?: string; version?: string };
      if (pkg.name === 'isapi-http') return pkg.version ?? 'unknown';
    } catch {
      // try the next place
    }
  }
  return 'unknown';
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    const command = parseCommand(argv);
    if (command.kind === 'help') {
      console.log(USAGE);
      return 0;
    }
    if (command.kind === 'version') {
      console.log(version());
      return 0;
    }
    if (command.kind === 'trace') {
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      const { name, json, level, requestId, follow } = command.args;
      await runTraceCollector({ name, json, level, requestId, follow, signal: stop.signal });
      return 0;
    }
    return await serve(command.args, { out: (l) => console.log(l), err: (l) => console.error(l), signals: process, cwd: process.cwd() });
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`isapi-http: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    const e = error as NodeJS.ErrnoException;
    const code = e?.code ? ` [${e.code}]` : '';
    console.error(`isapi-http: ${e?.message ?? String(error)}${code}`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error('isapi-http:', error);
    process.exit(1);
  },
);
