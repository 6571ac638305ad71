/**
 * Claiming a channel's endpoint: listen on the pipe or socket, refuse when a live channel already has it, and
 * take over a stale socket file that a dead process left behind (Unix only: a Windows pipe vanishes with its
 * last handle, so a name in use there always means a live owner).
 */
import { promises as fs } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { ErrorCodes, IsapiError } from '../errors.js';

/** How long a probe waits for the present owner of a socket to accept; a silent owner counts as alive. */
const PROBE_TIMEOUT_MS = 1000;

export function nameInUse(name: string, path: string, detail = 'a live trace channel already listens there'): IsapiError {
  return new IsapiError(
    ErrorCodes.TRACE_NAME_IN_USE,
    `the trace channel name "${name}" is in use (${path}): ${detail}. Give each app pool its own name (the "name" option; by default APP_POOL_ID).`,
  );
}

function listenOn(path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ pauseOnConnect: false }, onConnection);
    const failed = (error: Error): void => reject(error);
    server.once('error', failed);
    server.listen({ path, exclusive: true }, () => {
      server.removeListener('error', failed);
      // The channel must never keep a process alive by itself (host mode has its own keep-alive).
      server.unref();
      // Traces can hold what apps print: only the owner may connect (a Unix socket needs write permission).
      if (process.platform !== 'win32') void fs.chmod(path, 0o600).catch(() => undefined);
      resolve(server);
    });
  });
}

/** Does something accept connections at `path`? ECONNREFUSED / ENOENT mean no one does. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection({ path });
    const done = (alive: boolean): void => {
      clearTimeout(timer);
      probe.destroy();
      resolve(alive);
    };
    const timer = setTimeout(() => done(true), PROBE_TIMEOUT_MS);
    probe.once('connect', () => done(true));
    probe.once('error', (error: NodeJS.ErrnoException) => done(error.code !== 'ECONNREFUSED' && error.code !== 'ENOENT'));
  });
}

/**
 * Listen at `path` for `name`. Rejects with TRACE_NAME_IN_USE when a live channel holds it, or when the path is
 * something other than a socket (never deleted); removes a stale socket file and listens in its place.
 */
export async function claimEndpoint(name: string, path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  try {
    return await listenOn(path, onConnection);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
  }
  if (process.platform === 'win32') throw nameInUse(name, path);
  const stat = await fs.lstat(path).catch(() => null);
  if (stat && !stat.isSocket()) throw nameInUse(name, path, 'that path exists and is not a socket, so it is left alone');
  if (await answers(path)) throw nameInUse(name, path);
  // A socket file nobody listens on: left by a process that died without closing its channel.
  await fs.unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
  try {
    return await listenOn(path, onConnection);
  } catch (error) {
    // Another process took it between the unlink and the listen.
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw nameInUse(name, path);
    throw error;
  }
}

/** Stop listening. Node removes a Unix server's socket file itself when it closes (nothing else is unlinked here,
 * so a successor that claims the name right after cannot lose its socket). */
export function releaseEndpoint(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
