/**
 * Shared machinery for the differential conformance table (test/http/conformance.test.ts): one request shape that
 * becomes both the raw bytes sent to the node:http oracle and the RequestDescription given to the ISAPI hosts,
 * and the normalisation that makes the two wires comparable.
 *
 * Only the headers a real deployment legitimately differs in are left out of the comparison, on both sides:
 * `Date` (IIS adds its own), `Connection` and `Keep-Alive` (hop by hop: on ISAPI, fKeepConn carries that decision
 * and IIS writes the header), and `Server` (only IIS adds one). Everything else, the status line, every other
 * header line in order and case, and every body byte including chunk framing and trailers, must be equal.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { RequestModel, type RequestDescription } from '../../src/ecb/request-model.js';
import { encodeRequest, splitResponse, type RawRequest } from './node-http-oracle.js';

/** A request as a table row states it. */
export interface CaseRequest {
  /** Default GET. */
  readonly method?: string;
  /** The raw request target. Default `/`. */
  readonly url?: string;
  /** `1.0` or `1.1` (default). */
  readonly httpVersion?: '1.0' | '1.1';
  /** Header pairs in wire order (Host and Content-Length are added as a client would, by RequestModel). */
  readonly headers?: readonly (readonly [string, string])[];
  /** A body of known length (sent with Content-Length). */
  readonly body?: string | Buffer;
  /**
   * A body of unknown length: node:http gets a `Transfer-Encoding: chunked` request with one chunk per entry; the
   * ISAPI side gets cbTotalBytes = 0xFFFFFFFF (`unknownLength: true`) and the bytes as an async iterable.
   */
  readonly chunks?: readonly Buffer[];
}

/** The header that routes a request to its row's handler; both sides receive it. */
export const CASE_HEADER = 'X-Case';

function headersFor(caseName: string, request: CaseRequest): [string, string][] {
  return [[CASE_HEADER, caseName], ...(request.headers ?? []).map(([k, v]): [string, string] => [k, v])];
}

async function* streamed(chunks: readonly Buffer[]): AsyncGenerator<Buffer> {
  for (const chunk of chunks) {
    // A client streaming its upload: each chunk arrives on a later turn.
    await new Promise((resolve) => setImmediate(resolve));
    yield chunk;
  }
}

/** The description for MockEcb / EmulatedHost / the C host. Fresh each call: a streamed body is consumed once. */
export function isapiDescription(caseName: string, request: CaseRequest): RequestDescription {
  const base = {
    method: request.method ?? 'GET',
    url: request.url ?? '/',
    httpVersion: request.httpVersion ?? '1.1',
    headers: headersFor(caseName, request),
  };
  if (request.chunks) return { ...base, body: streamed(request.chunks), unknownLength: true };
  return request.body === undefined ? base : { ...base, body: request.body };
}

/** The same request as raw bytes for node:http, with exactly the header list RequestModel gives IIS. */
export function oracleRequest(caseName: string, request: CaseRequest): { bytes: Buffer; method: string } {
  const description = isapiDescription(caseName, request);
  // The model is built for its header list only; a streamed body is replaced so no iterator is left running.
  const model = new RequestModel(request.chunks ? { ...description, body: undefined } : description);
  const raw: RawRequest = {
    method: model.method,
    url: model.rawUrl,
    httpVersion: model.httpVersion,
    headers: model.headers,
    body: request.chunks ? { chunks: request.chunks } : Buffer.from(request.body ?? ''),
  };
  return { bytes: encodeRequest(raw), method: model.method };
}

/** Headers left out of the comparison on both sides, and why (see the module comment). */
export const IGNORED_HEADERS: ReadonlySet<string> = new Set(['date', 'connection', 'keep-alive', 'server']);

export interface Comparable {
  /** Status line and kept header lines, CRLF-joined, with the blank line; '' if no head arrived. */
  readonly head: string;
  readonly bodyLength: number;
  readonly bodySha256: string;
  /** The body as latin1 when it is small enough to give a readable diff. */
  readonly bodyPreview: string | null;
  /** The full normalised bytes, for the byte-exact check. */
  readonly bytes: Buffer;
}

export function comparable(raw: Buffer): Comparable {
  const split = splitResponse(raw);
  const kept = split.headerLines.filter((line) => {
    const colon = line.indexOf(':');
    return !IGNORED_HEADERS.has((colon === -1 ? line : line.slice(0, colon)).trim().toLowerCase());
  });
  const head = split.hasHead ? [split.statusLine, ...kept].join('\r\n') + '\r\n\r\n' : '';
  const body = split.body;
  return {
    head,
    bodyLength: body.length,
    bodySha256: sha256(body),
    bodyPreview: body.length <= 8192 ? body.toString('latin1') : null,
    bytes: Buffer.concat([Buffer.from(head, 'latin1'), body]),
  };
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Deterministic bytes (xorshift32), so a misplaced or repeated block shows up in the hash. */
export function pattern(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of req) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}
