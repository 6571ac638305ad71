/** Helpers for the end-to-end tests: a createServer on 127.0.0.1:0, raw-socket exchanges, a small response reader. */
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { AppLike } from '../../src/handlers/to-request-listener.js';
import { createServer, type IsapiServer } from '../../src/host/dev-server.js';
import type { IsapiServerOptions } from '../../src/host/server-options.js';

export interface Started {
  readonly server: IsapiServer;
  readonly port: number;
  url(path?: string): string;
  /** Destroy every connection and close the server (and the extension behind it). */
  close(): Promise<void>;
}

export async function start(listener?: AppLike | null, options: IsapiServerOptions = {}): Promise<Started> {
  // App errors are expected in some tests: keep them out of the output (not an option when serving an extension).
  const server = createServer(listener ?? null, options.extension ? options : { onError: () => undefined, ...options });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: (path = '/') => `http://127.0.0.1:${port}${path}`,
    close: () => shutDown(server),
  };
}

/**
 * Close a server for good: every connection destroyed, the listener closed, and every ISAPI session ended, so that
 * the extension is unloaded and its koffi callbacks released before the test file moves on (test/ecb counts them).
 */
export async function shutDown(server: IsapiServer): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  await waitFor(() => server.inFlight === 0, 10_000, 'the sessions to end');
}

/** Open a raw TCP connection. */
export function rawConnect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Collect what the server sends until it closes the connection (or `until` says enough, or the timeout). */
export function collect(socket: Socket, options: { until?: (received: Buffer) => boolean; timeoutMs?: number } = {}): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      resolve({ data: Buffer.concat(chunks), closed });
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      if (options.until?.(Buffer.concat(chunks))) finish(false);
    };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 5000);
    socket.on('data', onData);
    socket.once('close', () => finish(true));
    socket.once('end', () => finish(true));
    socket.on('error', () => undefined);
  });
}

/** Send bytes on a fresh connection and collect the answer until the server closes it. */
export async function rawExchange(port: number, request: string | Buffer, options: { until?: (received: Buffer) => boolean; timeoutMs?: number } = {}): Promise<{ data: Buffer; closed: boolean; text: string }> {
  const socket = await rawConnect(port);
  const result = collect(socket, options);
  socket.write(request);
  const r = await result;
  socket.destroy();
  return { ...r, text: r.data.toString('latin1') };
}

export interface WireResponse {
  readonly statusLine: string;
  readonly statusCode: number;
  /** Lower-cased names. */
  readonly headers: Record<string, string>;
  readonly rawHead: string;
  readonly body: Buffer;
  /** Chunk-framed on the wire. */
  readonly chunked: boolean;
}

/**
 * Split a byte stream into HTTP/1.1 responses. `methods` says which request each answers (HEAD has no body);
 * a response without Content-Length or chunked framing runs to the end of the data. 1xx responses are returned too.
 */
export function parseResponses(data: Buffer, methods: readonly string[] = []): WireResponse[] {
  const out: WireResponse[] = [];
  let at = 0;
  let index = 0;
  while (at < data.length) {
    const end = data.indexOf('\r\n\r\n', at, 'latin1');
    if (end === -1) throw new Error(`incomplete response head at ${at}: ${JSON.stringify(data.toString('latin1', at, at + 200))}`);
    const rawHead = data.toString('latin1', at, end);
    const [statusLine = '', ...lines] = rawHead.split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const statusCode = Number(statusLine.split(' ')[1]);
    let bodyStart = end + 4;
    const informational = statusCode >= 100 && statusCode < 200;
    const method = informational ? 'X' : (methods[index] ?? 'GET');
    let body: Buffer = Buffer.alloc(0);
    const chunked = /chunked/i.test(headers['transfer-encoding'] ?? '');
    if (informational || method === 'HEAD' || statusCode === 204 || statusCode === 304) {
      // no body
    } else if (chunked) {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = data.indexOf('\r\n', bodyStart, 'latin1');
        const size = Number.parseInt(data.toString('latin1', bodyStart, lineEnd), 16);
        bodyStart = lineEnd + 2;
        if (size === 0) {
          bodyStart = data.indexOf('\r\n\r\n', bodyStart - 2, 'latin1') + 4;
          break;
        }
        parts.push(data.subarray(bodyStart, bodyStart + size));
        bodyStart += size + 2;
      }
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      body = data.subarray(bodyStart, bodyStart + n);
      bodyStart += n;
    } else {
      body = data.subarray(bodyStart);
      bodyStart = data.length;
    }
    out.push({ statusLine, statusCode, headers, rawHead, body, chunked });
    at = bodyStart;
    if (!informational) index++;
  }
  return out;
}

/** Resolves when `predicate` holds, polling every few ms; rejects after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
