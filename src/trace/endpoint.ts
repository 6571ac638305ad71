/**
 * Where a trace channel listens: the named pipe `\\.\pipe\isapi-http-<name>` on Windows, the Unix socket
 * `<os.tmpdir()>/isapi-http-<name>.sock` elsewhere. The name keeps two app pools (two w3wp processes) apart; by
 * default it is the pool's name, which IIS puts in the worker process's APP_POOL_ID variable.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { invalidArgument } from '../errors.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** sockaddr_un.sun_path is 108 bytes on Linux and 104 on macOS, the terminating NUL included. */
const MAX_SOCKET_PATH = 103;

export function checkTraceName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw invalidArgument(`a trace channel name is 1 to 64 letters, digits, '.', '_' or '-' (starting with a letter or digit), got ${JSON.stringify(name)}`);
  }
  return name;
}

/** The default channel name: the app pool's name (APP_POOL_ID, made safe), else `default`. */
export function defaultTraceName(env: Record<string, string | undefined> = process.env): string {
  const pool = (env.APP_POOL_ID ?? '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return pool.length > 0 ? pool : 'default';
}

/** The pipe or socket path for a channel name. */
export function traceEndpoint(name: string, platform: NodeJS.Platform = process.platform, dir: string = tmpdir()): string {
  checkTraceName(name);
  if (platform === 'win32') return `\\\\.\\pipe\\isapi-http-${name}`;
  const path = join(dir, `isapi-http-${name}.sock`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw invalidArgument(`the trace socket path ${path} is longer than a Unix socket path may be (${MAX_SOCKET_PATH} bytes): use a shorter name or a shorter TMPDIR`);
  }
  return path;
}
