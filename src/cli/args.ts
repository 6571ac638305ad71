/**
 * The command line of `isapi-http`, parsed with node:util parseArgs (no dependency). Every mistake is a UsageError
 * with a message that says what was wrong and what is expected; main.ts exits with code 2 for it.
 */
import { parseArgs } from 'node:util';
import { IsapiError, ErrorCodes } from '../errors.js';
import { normaliseMount, SOCKET_VARIABLES, type HandlerKind } from '../host/server-options.js';

export const USAGE = `Usage: isapi-http serve <module> [options]
       isapi-http trace [name] [--json] [--level <level>] [--request <id>] [--no-follow]

Serve a Node app (or an ISAPI extension module) through the ISAPI path: every request becomes a native
EXTENSION_CONTROL_BLOCK handled by createExtension's HttpExtensionProc, as under IIS.

<module>                 an app module (ESM or CJS; Express, Koa, Fastify, Hono, a (req, res) listener, ...)
                         or an extension module whose default export is createExtension(...)
Options:
  --port, -p <n>         TCP port (default 3000; 0 picks a free one)
  --host <address>       address to listen on (default: all interfaces)
  --export <name>        the module's export to serve (default: the default export)
  --handler <kind>       simple | threadpool (default simple; --watch implies threadpool)
  --workers <n>          worker threads, with --handler threadpool (default: one per CPU)
  --watch                reload on change: new worker threads load the edited code while the current ones
                         serve; a file that fails to load leaves the current code serving. Watches the
                         module's directory tree, without node_modules and names starting with "."
                         (implies --handler threadpool)
  --mount </vdir>        emulate an IIS application at this virtual path (APPL_MD_PATH .../ROOT/vdir)
  --var NAME=VALUE       set a server variable (AUTH_USER, LOGON_USER, HTTPS, ...); repeatable
  --read-ahead <bytes>   uploadReadAheadSize (default 49152)
  --help, -h             show this help
  --version              print the version

Ctrl-C (SIGINT) or SIGTERM stops accepting, lets requests in flight finish, and exits 0.

trace connects to an extension's trace channel (docs/trace.md): it prints the recent ring, then follows live.
  [name]                 the channel name (default: APP_POOL_ID, else "default")
  --json                 print raw JSON records
  --level <level>        minimum level: debug, info, warn, error, fatal
  --request <id>         only the records of this request
  --no-follow            print the ring and exit`;

export class UsageError extends IsapiError {
  constructor(message: string) {
    super(ErrorCodes.INVALID_ARGUMENT, message);
    this.name = 'UsageError';
  }
}

export interface ServeArgs {
  readonly module: string;
  readonly port: number;
  readonly host: string | undefined;
  readonly exportName: string;
  readonly handler: HandlerKind | undefined;
  readonly workers: number | undefined;
  /** --watch: reload on change (implies handler threadpool). */
  readonly watch: boolean;
  readonly mount: string;
  readonly serverVariables: Readonly<Record<string, string>>;
  readonly readAhead: number | undefined;
}

export interface TraceArgs {
  readonly name: string | undefined;
  readonly json: boolean;
  readonly level: string | undefined;
  readonly requestId: string | undefined;
  readonly follow: boolean;
}

export type Command =
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'serve'; readonly args: ServeArgs }
  | { readonly kind: 'trace'; readonly args: TraceArgs };

function integer(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`${name} must be from ${min} to ${max}, got ${raw}`);
  return n;
}

export function parseCommand(argv: readonly string[]): Command {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    // parseArgs says what was wrong (unknown option, missing value); keep its words, drop its "TypeError" framing.
    throw new UsageError((error as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const [command, module, ...extra] = positionals;
  if (command === undefined) throw new UsageError('no command given; the commands are "serve" and "trace"');
  if (command === 'trace') {
    if (extra.length > 0) throw new UsageError(`unexpected argument(s) ${extra.map((a) => JSON.stringify(a)).join(' ')}`);
    const level = values.level;
    if (level !== undefined && !['debug', 'info', 'warn', 'error', 'fatal'].includes(level)) {
      throw new UsageError(`--level must be debug, info, warn, error or fatal, got ${JSON.stringify(level)}`);
    }
    return { kind: 'trace', args: { name: module, json: values.json === true, level, requestId: values.request, follow: values['no-follow'] !== true } };
  }
  if (values.json || values.level || values.request || values['no-follow']) throw new UsageError('--json, --level, --request and --no-follow belong to the trace command');
  if (command !== 'serve') throw new UsageError(`unknown command ${JSON.stringify(command)}; the commands are "serve" and "trace" (iis-config is not available yet)`);
  if (module === undefined || module === '') throw new UsageError('serve needs the module to serve: isapi-http serve <module>');
  if (extra.length > 0) throw new UsageError(`unexpected argument(s) ${extra.map((a) => JSON.stringify(a)).join(' ')}`);

  const port = integer('--port', values.port, 0, 65535) ?? 3000;
  const host = values.host;
  if (host !== undefined && host.trim() === '') throw new UsageError('--host needs an address, e.g. 127.0.0.1 or ::');
  const watch = values.watch === true;
  if (watch && values.handler === 'simple') throw new UsageError('--watch needs --handler threadpool (the default with --watch): handler simple cannot reload an app already loaded on its thread');
  // Reloading means fresh code in fresh threads, which only the thread pool has: --watch picks it.
  const handler = values.handler ?? (watch ? 'threadpool' : undefined);
  if (handler !== undefined && handler !== 'simple' && handler !== 'threadpool') throw new UsageError(`--handler must be simple or threadpool, got ${JSON.stringify(handler)}`);
  const workers = integer('--workers', values.workers, 1, 1024);
  if (workers !== undefined && handler !== 'threadpool') throw new UsageError('--workers applies to --handler threadpool only');
  const exportName = values.export ?? 'default';
  if (!/^[A-Za-z_$][\w$]*$/.test(exportName)) throw new UsageError(`--export must be an export name, got ${JSON.stringify(exportName)}`);
  let mount = '';
  try {
    mount = normaliseMount(values.mount);
  } catch (error) {
    throw new UsageError(`--mount: ${(error as Error).message.replace(/^createServer: /, '')}`);
  }
  const serverVariables: Record<string, string> = {};
  for (const entry of values.var ?? []) {
    const eq = entry.indexOf('=');
    const name = eq === -1 ? entry : entry.slice(0, eq);
    if (eq === -1 || !/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) throw new UsageError(`--var takes NAME=VALUE (letters, digits and _ in NAME), got ${JSON.stringify(entry)}`);
    if (SOCKET_VARIABLES.has(name.toUpperCase())) throw new UsageError(`--var ${name.toUpperCase()}: it comes from the real TCP connection and cannot be set`);
    serverVariables[name.toUpperCase()] = entry.slice(eq + 1);
  }
  const readAhead = integer('--read-ahead', values['read-ahead'], 0, 0x7fffffff);
  return { kind: 'serve', args: { module, port, host, exportName, handler, workers, watch, mount, serverVariables, readAhead } };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      export: { type: 'string' },
      handler: { type: 'string' },
      workers: { type: 'string' },
      watch: { type: 'boolean' },
      mount: { type: 'string' },
      var: { type: 'string', multiple: true },
      'read-ahead': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
      json: { type: 'boolean' },
      level: { type: 'string' },
      request: { type: 'string' },
      'no-follow': { type: 'boolean' },
    },
  });
}
