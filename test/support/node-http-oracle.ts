/**
 * The node:http oracle for the differential conformance table: the same app on a real `http.createServer` bound to
 * 127.0.0.1:0, driven by a raw `net` client, so the test controls every request byte (request line, header order
 * and case, HTTP/1.0, `%2F`, chunked uploads) and sees every response byte (status line, header lines, chunk
 * framing, trailers) exactly as a client would.
 *
 * A keep-alive response is read up to the end its own framing declares (nothing for HEAD/204/304, Content-Length,
 * or the last chunk plus trailers); anything else is read until the server closes. Then the client closes, so the
 * request under test is never followed by another one on the connection.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { RequestModel } from '../../src/ecb/request-model.js';

export type Listener = (req: http.IncomingMessage, res: http.ServerResponse) => unknown;

/** A request as a client sends it: the RequestModel gives both sides the same header list (Host, Content-Length). */
export interface RawRequest {
  readonly method: string;
  /** The request target exactly as sent. */
  readonly url: string;
  /** `1.0` or `1.1`. */
  readonly httpVersion: string;
  /** Header pairs in wire order. */
  readonly headers: readonly (readonly [string, string])[];
  /** The body with a known length, or the chunks of a `Transfer-Encoding: chunked` upload. */
  readonly body: Buffer | { readonly chunks: readonly Buffer[] };
}

/** The request bytes: the request line, the header lines, the blank line, then the body (chunk-framed if chunked). */
export function encodeRequest(request: RawRequest): Buffer {
  const head = `${request.method} ${request.url} HTTP/${request.httpVersion}\r\n${request.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  const parts: Buffer[] = [Buffer.from(head, 'latin1')];
  if (Buffer.isBuffer(request.body)) {
    parts.push(request.body);
  } else {
    for (const chunk of request.body.chunks) {
      if (chunk.length === 0) continue; // an empty chunk would end the body early
      parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'), chunk, Buffer.from('\r\n', 'latin1'));
    }
    parts.push(Buffer.from('0\r\n\r\n', 'latin1'));
  }
  return Buffer.concat(parts);
}

/** The header list IIS and node:http both see for a description, taken from the RequestModel itself. */
export function requestHeaders(model: RequestModel): [string, string][] {
  return model.headers.map(([k, v]) => [k, v]);
}

/** A response split the way the comparison needs it. Bytes stay bytes: the body keeps its chunk framing. */
export interface SplitResponse {
  /** `HTTP/1.1 200 OK`, or '' when no head arrived. */
  readonly statusLine: string;
  /** Header lines without CRLF, in wire order. */
  readonly headerLines: readonly string[];
  /** Everything after the head's blank line, verbatim. */
  readonly body: Buffer;
  /** A complete head was received. */
  readonly hasHead: boolean;
}

export function splitResponse(raw: Buffer): SplitResponse {
  const end = raw.indexOf('\r\n\r\n', 0, 'latin1');
  if (end === -1) return { statusLine: '', headerLines: [], body: raw, hasHead: false };
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  return { statusLine: lines[0] ?? '', headerLines: lines.slice(1), body: raw.subarray(end + 4), hasHead: true };
}

/** The value of the first header line named `name` (case-insensitive), or undefined. */
export function headerValue(lines: readonly string[], name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === lower) return line.slice(colon + 1).trim();
  }
  return undefined;
}

/**
 * Where a response ends according to its own framing (RFC 9112 §6.3), or null when it is not complete yet or is
 * delimited by the connection closing.
 */
export function framedLength(raw: Buffer, method: string): number | null {
  const interim = interimLength(raw);
  if (interim > 0) {
    const rest = framedLength(raw.subarray(interim), method);
    return rest === null ? null : interim + rest;
  }
  const headEnd = raw.indexOf('\r\n\r\n', 0, 'latin1');
  if (headEnd === -1) return null;
  const start = headEnd + 4;
  const { statusLine, headerLines } = splitResponse(raw);
  const status = Number.parseInt(statusLine.split(' ')[1] ?? '', 10);
  if (method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) return start;
  const te = headerValue(headerLines, 'transfer-encoding');
  if (te !== undefined) {
    if (!/(?:^|,)\s*chunked\s*$/i.test(te)) return null;
    let pos = start;
    for (;;) {
      const lineEnd = raw.indexOf('\r\n', pos, 'latin1');
      if (lineEnd === -1) return null;
      const size = Number.parseInt(raw.subarray(pos, lineEnd).toString('latin1').split(';')[0] ?? '', 16);
      if (!Number.isFinite(size)) throw new Error(`bad chunk size line at byte ${pos}`);
      if (size === 0) {
        // The last chunk, then trailer lines, then a blank line.
        if (raw.length >= lineEnd + 4 && raw.subarray(lineEnd + 2, lineEnd + 4).toString('latin1') === '\r\n') return lineEnd + 4;
        const trailersEnd = raw.indexOf('\r\n\r\n', lineEnd + 2, 'latin1');
        return trailersEnd === -1 ? null : trailersEnd + 4;
      }
      pos = lineEnd + 2 + size + 2;
      if (pos > raw.length) return null;
    }
  }
  const cl = headerValue(headerLines, 'content-length');
  if (cl !== undefined) return raw.length >= start + Number(cl) ? start + Number(cl) : null;
  return null;
}

/**
 * The length of the leading interim (1xx, other than 101) responses, e.g. `100 Continue` or `103 Early Hints`,
 * which precede the final response on the same connection (RFC 9110 §15.2); 0 when there are none.
 */
export function interimLength(raw: Buffer): number {
  let pos = 0;
  for (;;) {
    const m = /^HTTP\/\d\.\d (1\d\d)\b/.exec(raw.subarray(pos, pos + 16).toString('latin1'));
    if (!m || m[1] === '101') return pos;
    const end = raw.indexOf('\r\n\r\n', pos, 'latin1');
    if (end === -1) return pos;
    pos = end + 4;
  }
}

export interface OracleResponse {
  /** The bytes the client received. */
  readonly raw: Buffer;
  /** The server closed the connection (as opposed to the client after a complete, framed response). */
  readonly closedByServer: boolean;
}

/** A real node:http server for one listener, and a raw client. */
export class NodeHttpOracle {
  private readonly server: http.Server;
  private readonly clients = new Set<net.Socket>();

  private constructor(server: http.Server) {
    this.server = server;
  }

  static async start(listener: Listener): Promise<NodeHttpOracle> {
    const server = http.createServer(listener);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new NodeHttpOracle(server);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Send `bytes` on a fresh connection and collect the response. */
  request(bytes: Buffer, method: string, timeoutMs = 20_000): Promise<OracleResponse> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.port, '127.0.0.1');
      this.clients.add(socket);
      // A growing buffer (doubling), so a 10 MB response is not re-concatenated on every 64 KiB read.
      let acc = Buffer.alloc(64 * 1024);
      let size = 0;
      let settled = false;
      const finish = (closedByServer: boolean, error?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        this.clients.delete(socket);
        if (error) return reject(error);
        const raw = Buffer.from(acc.subarray(0, size));
        const end = framedLength(raw, method);
        resolve({ raw: end === null ? raw : raw.subarray(0, end), closedByServer });
      };
      const timer = setTimeout(() => finish(false, new Error(`the node:http oracle got no complete response in ${timeoutMs} ms`)), timeoutMs);
      socket.on('data', (chunk: Buffer) => {
        if (size + chunk.length > acc.length) {
          const bigger = Buffer.alloc(Math.max(acc.length * 2, size + chunk.length));
          acc.copy(bigger, 0, 0, size);
          acc = bigger;
        }
        chunk.copy(acc, size);
        size += chunk.length;
        if (framedLength(acc.subarray(0, size), method) !== null) finish(false);
      });
      // A server that destroys the connection may reset it: what arrived before is what a client received.
      socket.on('error', () => finish(true));
      socket.on('end', () => finish(true));
      socket.on('close', () => finish(true));
      socket.write(bytes);
    });
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.destroy();
    this.clients.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
