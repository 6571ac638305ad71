/**
 * `isapi-http serve <module>`: load an app or an extension module, serve it with createServer (every request goes
 * through a native ECB and the extension's HttpExtensionProc), log one line per request, and shut down gracefully
 * on SIGINT / SIGTERM: stop accepting, let requests in flight finish, exit 0. A second signal exits at once (1).
 *
 * With `--handler threadpool` (or `--watch`, which implies it) the module is not imported here at all: its path goes
 * to createServer's ThreadPoolHandler, and each worker thread imports it. The command waits for the workers to load
 * it before listening, so a module that cannot load still exits 1, as with handler simple.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';
import { IsapiError, ErrorCodes } from '../errors.js';
import type { ReloadEvent } from '../handlers/thread-pool-handler.js';
import type { IsapiExtension } from '../handlers/create-extension.js';
import { loadApp } from '../handlers/load-app.js';
import type { AppLike } from '../handlers/to-request-listener.js';
import { createServer, type IsapiServer } from '../host/dev-server.js';
import type { IsapiServerOptions } from '../host/server-options.js';
import { UsageError, type ServeArgs } from './args.js';

export interface CliIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  /** Where signals come from (process in production; an EventEmitter in tests). */
  readonly signals: Pick<NodeJS.EventEmitter, 'on' | 'removeListener'>;
  readonly cwd: string;
}

/** An extension module's default export: what createExtension returns (DESIGN.md "Public API"). */
export function isExtension(value: unknown): value is IsapiExtension {
  const v = value as Partial<IsapiExtension> | null;
  return (
    v !== null &&
    typeof v === 'object' &&
    typeof v.HttpExtensionProc === 'function' &&
    typeof v.GetExtensionVersion === 'function' &&
    typeof v.TerminateExtension === 'function' &&
    typeof v.nativeEntryPoints === 'function'
  );
}

export function urlOf(address: AddressInfo, mount: string): string {
  const wildcard = address.address === '::' || address.address === '0.0.0.0';
  const host = wildcard ? 'localhost' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}${mount}/`;
}

function modulePath(args: ServeArgs, cwd: string): string {
  const path = resolve(cwd, args.module);
  if (!existsSync(path) || !statSync(path).isFile()) throw new UsageError(`the module ${JSON.stringify(args.module)} does not exist (looked for ${path})`);
  return path;
}

async function load(args: ServeArgs, cwd: string): Promise<{ value: unknown; path: string }> {
  const path = modulePath(args, cwd);
  try {
    return { value: await loadApp(pathToFileURL(path).href, args.exportName), path };
  } catch (error) {
    // loadApp says "no export named ..." for a wrong --export (a usage mistake); an import that threw is the app's.
    if ((error as Error).cause === undefined) throw new UsageError((error as Error).message);
    throw error;
  }
}

/** One line per reload attempt. Failures are printed by the pool itself (stderr, with the error's stack). */
function reloadLine(event: ReloadEvent, root: string): string | null {
  if (!event.ok) return null;
  const changed = event.changed.map((p) => relative(root, p) || p);
  const what = changed.length === 0 ? '' : ` after changes to ${changed.slice(0, 3).join(', ')}${changed.length > 3 ? ` and ${changed.length - 3} more` : ''}`;
  return `isapi-http: reloaded${what}: generation ${event.generation} serving (${event.ms} ms)${event.draining > 0 ? `, ${event.draining} request(s) finishing on the previous workers` : ''}`;
}

/** Serve until a signal; resolves with the exit code. Throws UsageError for bad arguments. */
export async function serve(args: ServeArgs, io: CliIo): Promise<number> {
  const pooled = args.handler === 'threadpool';
  // The thread pool's workers import the module themselves; importing it here too would run it once more for nothing.
  const { value, path } = pooled ? { value: null, path: modulePath(args, io.cwd) } : await load(args, io.cwd);
  const common: IsapiServerOptions = {
    ...(args.mount ? { mount: args.mount } : {}),
    ...(Object.keys(args.serverVariables).length > 0 ? { serverVariables: args.serverVariables } : {}),
    ...(args.readAhead !== undefined ? { readAhead: args.readAhead } : {}),
  };
  let server: IsapiServer;
  let what: string;
  try {
    if (pooled) {
      server = createServer(null, {
        ...common,
        handler: 'threadpool',
        module: path,
        export: args.exportName,
        ...(args.workers !== undefined ? { workers: args.workers } : {}),
        ...(args.watch
          ? {
              watch: true,
              onReload: (event: ReloadEvent) => {
                const line = reloadLine(event, dirname(path));
                if (line) io.out(line);
              },
            }
          : {}),
      });
      what = 'app';
    } else if (isExtension(value)) {
      if (args.handler !== undefined) throw new UsageError('--handler and --workers configure the handler built for an app; an extension module brings its own handler');
      server = createServer(null, { ...common, extension: value });
      what = 'ISAPI extension';
    } else {
      server = createServer(value as AppLike, {
        ...common,
        ...(args.handler ? { handler: args.handler } : {}),
        ...(args.workers !== undefined ? { workers: args.workers } : {}),
      });
      what = 'app';
    }
  } catch (error) {
    // createServer refuses what the arguments asked for (threadpool, an export that is no app): a usage error.
    const e = error as IsapiError;
    if (e instanceof IsapiError && (e.code === ErrorCodes.INVALID_ARGUMENT || e.code === ErrorCodes.NOT_SUPPORTED)) {
      throw new UsageError(`${e.message.replace(/^createServer: /, '')} [${e.code}]`);
    }
    throw error;
  }
  server.on('access', (e) => io.out(`${e.method} ${e.url} ${e.statusCode} ${e.ms.toFixed(1)} ms`));
  if (pooled) {
    try {
      await server.ready();
    } catch (error) {
      // The workers could not load the module: stop them, and exit 1 as handler simple does for a module that fails.
      server.close();
      await server.unloaded;
      throw error;
    }
  }

  await new Promise<void>((resolveListen, rejectListen) => {
    const onError = (error: Error): void => rejectListen(error);
    server.once('error', onError);
    server.listen(args.port, args.host, () => {
      server.removeListener('error', onError);
      resolveListen();
    });
  });
  server.on('error', (error) => io.err(`isapi-http: server error: ${error.message}`));
  const pool = pooled ? `, ${args.workers ?? 'one per CPU'} worker${args.workers === 1 ? '' : 's'}` : '';
  io.out(`isapi-http: serving the ${what} ${path} through ISAPI (handler ${args.handler ?? 'simple'}${pool}${args.mount ? `, mounted at ${args.mount}` : ''})`);
  if (args.watch) io.out(`isapi-http: watching ${dirname(path)} (without node_modules and dot names); a change reloads the app`);
  io.out(`isapi-http: listening on ${urlOf(server.address() as AddressInfo, args.mount)}  (Ctrl-C to stop)`);

  return new Promise<number>((done) => {
    let stopping = false;
    const onSignal = (signal: string): void => {
      if (stopping) {
        io.err(`isapi-http: ${signal} again, exiting now with ${server.inFlight} request(s) unfinished`);
        cleanup();
        return done(1);
      }
      stopping = true;
      io.out(`isapi-http: ${signal}: no new connections; waiting for ${server.inFlight} request(s) in flight`);
      server.close(() => {
        // With a thread pool, wait for its workers to exit (and the watcher to close) before the process ends.
        void server.unloaded.then(() => {
          cleanup();
          io.out('isapi-http: stopped');
          done(0);
        });
      });
    };
    const onInt = (): void => onSignal('SIGINT');
    const onTerm = (): void => onSignal('SIGTERM');
    const cleanup = (): void => {
      io.signals.removeListener('SIGINT', onInt);
      io.signals.removeListener('SIGTERM', onTerm);
    };
    // A listener replaces Node's default (exit at once); it stays for the second signal, which forces the exit.
    io.signals.on('SIGINT', onInt);
    io.signals.on('SIGTERM', onTerm);
  });
}
