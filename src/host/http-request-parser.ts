/**
 * The request-head parser of createServer's emulated IIS front end: a strict HTTP/1.x request line and header
 * section (RFC 9112 §2–§5), parsed incrementally from a TCP byte stream.
 *
 * Why our own parser: Node's HTTPParser binding is private (process.binding, no stability promise); the npm
 * choices are either a lenient JS port made to monkey-patch Node (http-parser-js: accepts obs-fold, bare LF and
 * duplicate Content-Length, the very ambiguities request smuggling lives on) or llhttp's WASM build, which needs a
 * build step and still leaves body framing, pipelining and the IIS policies to us. The head grammar is small; a
 * strict reader of ~200 lines rejects every ambiguity with 400 instead of guessing, which is what http.sys does
 * in spirit (it is a strict parser) and what a test server should do. Bodies are framed by chunked-body.ts.
 *
 * Strictness, each a 400 unless noted:
 * - lines end in CRLF; a bare LF anywhere in the head is rejected (RFC 9112 §2.2 lets a server refuse it);
 * - request line = token SP target SP HTTP/x.y, single spaces; HTTP/2+ or HTTP/0.x → 505;
 * - target: origin-form, `*` for OPTIONS, absolute-form (turned into origin-form, RFC 9112 §3.2.2), authority-form
 *   for CONNECT only; visible ASCII only, no `#`;
 * - header names are tokens with no whitespace before the colon (RFC 9112 §5.1); obs-fold is refused (§5.2);
 *   values hold no control characters but HTAB (RFC 9110 §5.5);
 * - the whole head (request line + headers) above `maxHeaderSize` (default 16 KiB) → 431, as node:http answers.
 *   http.sys also limits the head to 16 KB by default (MaxRequestBytes) but answers 400; we follow node:http
 *   because createServer's contract is node:http's. Up to 4 empty lines before a request line are skipped (§2.2).
 */

/** A request head that failed to parse: the status the front end answers with, and a node-style code. */
export class HttpParseError extends Error {
  /** llhttp-style code (`HPE_*`), so a 'clientError' handler written for node:http reads it the same way. */
  readonly code: string;
  readonly statusCode: number;
  /** Raw bytes that were being parsed (node:http's clientError errors carry `rawPacket` too). */
  rawPacket: Buffer | undefined;

  constructor(statusCode: number, code: string, message: string) {
    super(message);
    this.name = 'HttpParseError';
    this.statusCode = statusCode;
    this.code = code;
    this.rawPacket = undefined;
  }
}

export interface RequestHead {
  readonly method: string;
  /** The request target exactly as sent. */
  readonly target: string;
  /** The target in origin-form (`/path?query`), or `*`, or the authority for CONNECT. */
  readonly url: string;
  readonly httpVersion: '1.0' | '1.1';
  /** Header pairs in wire order, names as sent, values without surrounding whitespace. */
  readonly headers: readonly (readonly [string, string])[];
  /** Bytes the head took on the wire, blank line included. */
  readonly size: number;
}

export const DEFAULT_MAX_HEADER_SIZE = 16 * 1024;
const MAX_LEADING_EMPTY_LINES = 4;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const TARGET = /^[\x21-\x7e]+$/;
const REQUEST_LINE = /^([^ ]+) ([^ ]+) HTTP\/(\d)\.(\d)$/;

function bad(code: string, message: string): HttpParseError {
  return new HttpParseError(400, code, message);
}

/**
 * Reads one request head at a time from the bytes a connection accumulates. `take(buffer)` looks for a complete
 * head at the start of `buffer`; it remembers how far it scanned, so feeding the same growing buffer costs O(n).
 */
export class RequestHeadReader {
  private readonly maxHeaderSize: number;
  private scanned = 0;

  constructor(maxHeaderSize = DEFAULT_MAX_HEADER_SIZE) {
    this.maxHeaderSize = maxHeaderSize;
  }

  /** Forget the scan position: the next buffer starts a new request. */
  reset(): void {
    this.scanned = 0;
  }

  /**
   * A complete head at the start of `buffer` and how many bytes it used, or null when more bytes are needed.
   * Throws HttpParseError for a malformed or oversized head.
   */
  take(buffer: Buffer): { head: RequestHead; used: number } | null {
    // Skip the empty lines RFC 9112 §2.2 asks a server to tolerate before the request line.
    let start = 0;
    for (let n = 0; n < MAX_LEADING_EMPTY_LINES && buffer[start] === 0x0d && buffer[start + 1] === 0x0a; n++) start += 2;
    let end = -1;
    for (let i = Math.max(this.scanned, start); i < buffer.length; i++) {
      if (buffer[i] !== 0x0a) continue;
      if (i === start || buffer[i - 1] !== 0x0d) throw bad('HPE_LF_EXPECTED', 'a line of the request head ends in a bare LF; HTTP/1.1 lines end in CRLF');
      if (i >= start + 3 && buffer[i - 2] === 0x0a && buffer[i - 3] === 0x0d) {
        end = i + 1;
        break;
      }
    }
    if (end === -1) {
      this.scanned = buffer.length;
      if (buffer.length - start > this.maxHeaderSize) {
        throw new HttpParseError(431, 'HPE_HEADER_OVERFLOW', `the request head is larger than ${this.maxHeaderSize} bytes`);
      }
      return null;
    }
    if (end - start > this.maxHeaderSize) {
      throw new HttpParseError(431, 'HPE_HEADER_OVERFLOW', `the request head is larger than ${this.maxHeaderSize} bytes`);
    }
    this.scanned = 0;
    const head = parseHead(buffer.toString('latin1', start, end - 4), end);
    return { head, used: end };
  }
}

/** Parse a head (without its final CRLF CRLF). */
export function parseHead(text: string, size: number): RequestHead {
  const lines = text.split('\r\n');
  const requestLine = lines[0] ?? '';
  const m = REQUEST_LINE.exec(requestLine);
  if (!m) {
    if (/^[^ ]+ [^ ]+$/.test(requestLine)) throw bad('HPE_INVALID_VERSION', 'the request line has no HTTP version (HTTP/0.9 is not supported)');
    throw bad('HPE_INVALID_REQUEST_LINE', `malformed request line ${JSON.stringify(requestLine.slice(0, 80))}`);
  }
  const [, method, target, major, minor] = m as unknown as [string, string, string, string, string];
  if (!TOKEN.test(method)) throw bad('HPE_INVALID_METHOD', `the method ${JSON.stringify(method.slice(0, 40))} is not a token`);
  if (major !== '1') {
    throw new HttpParseError(505, 'HPE_INVALID_VERSION', `HTTP/${major}.${minor} is not supported over this connection; use HTTP/1.0 or HTTP/1.1`);
  }
  // HTTP/1.2+ is processed as the highest 1.x minor version we implement (RFC 9110 §2.5).
  const httpVersion = minor === '0' ? '1.0' : '1.1';
  const url = originForm(method, target);

  const headers: [string, string][] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.length === 0) throw bad('HPE_INVALID_HEADER_TOKEN', 'an empty line inside the header section');
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) throw bad('HPE_INVALID_HEADER_TOKEN', 'obsolete line folding (obs-fold) in the header section');
    const colon = line.indexOf(':');
    if (colon <= 0) throw bad('HPE_INVALID_HEADER_TOKEN', `a header line without a name and colon: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) throw bad('HPE_INVALID_HEADER_TOKEN', `the header name ${JSON.stringify(name.slice(0, 80))} is not a token (whitespace before the colon is refused)`);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (BAD_VALUE.test(value)) throw bad('HPE_INVALID_HEADER_TOKEN', `the ${name} header holds a control character`);
    headers.push([name, value]);
  }
  return { method, target, url, httpVersion, headers, size };
}

function originForm(method: string, target: string): string {
  if (!TARGET.test(target) || target.includes('#')) throw bad('HPE_INVALID_URL', `malformed request target ${JSON.stringify(target.slice(0, 80))}`);
  if (target.startsWith('/')) return target;
  if (target === '*') {
    if (method !== 'OPTIONS') throw bad('HPE_INVALID_URL', 'the asterisk target is only valid with OPTIONS');
    return target;
  }
  if (method === 'CONNECT') return target;
  const abs = /^https?:\/\/[^/?]+(.*)$/i.exec(target);
  if (abs) {
    const rest = abs[1] as string;
    return rest === '' ? '/' : rest.startsWith('?') ? '/' + rest : rest;
  }
  throw bad('HPE_INVALID_URL', `malformed request target ${JSON.stringify(target.slice(0, 80))}`);
}

/** How the request body is delimited (RFC 9112 §6.3), decided from the head alone. */
export type BodyFraming = { readonly kind: 'none' } | { readonly kind: 'length'; readonly length: number } | { readonly kind: 'chunked' };

/** Every value of a header, comma lists split, in order. */
export function headerValues(head: RequestHead, name: string): string[] {
  const lower = name.toLowerCase();
  const out: string[] = [];
  for (const [k, v] of head.headers) {
    if (k.toLowerCase() !== lower) continue;
    for (const part of v.split(',')) {
      const t = part.trim();
      if (t !== '') out.push(t);
    }
  }
  return out;
}

export function headerCount(head: RequestHead, name: string): number {
  const lower = name.toLowerCase();
  return head.headers.reduce((n, [k]) => (k.toLowerCase() === lower ? n + 1 : n), 0);
}

/**
 * The body framing, refusing every ambiguous combination instead of picking one (request smuggling, RFC 9112
 * §6.1 and §6.3): Transfer-Encoding with Content-Length, Transfer-Encoding on HTTP/1.0, chunked not last,
 * differing Content-Length values. A coding other than chunked is 501 (RFC 9112 §6.1: "SHOULD respond 501").
 */
export function bodyFraming(head: RequestHead): BodyFraming {
  const te = headerValues(head, 'transfer-encoding').map((v) => v.toLowerCase());
  const cl = headerValues(head, 'content-length');
  const hasTe = headerCount(head, 'transfer-encoding') > 0;
  if (hasTe) {
    if (head.httpVersion === '1.0') throw bad('HPE_INVALID_TRANSFER_ENCODING', 'Transfer-Encoding in an HTTP/1.0 request');
    if (cl.length > 0 || headerCount(head, 'content-length') > 0) {
      throw bad('HPE_UNEXPECTED_CONTENT_LENGTH', 'both Transfer-Encoding and Content-Length: the body length is ambiguous');
    }
    if (te.length === 0 || te[te.length - 1] !== 'chunked') throw bad('HPE_INVALID_TRANSFER_ENCODING', 'Transfer-Encoding must end with chunked');
    if (te.filter((t) => t === 'chunked').length > 1) throw bad('HPE_INVALID_TRANSFER_ENCODING', 'chunked applied twice');
    const other = te.find((t) => t !== 'chunked');
    if (other !== undefined) throw new HttpParseError(501, 'HPE_INVALID_TRANSFER_ENCODING', `the transfer coding ${JSON.stringify(other)} is not implemented`);
    return { kind: 'chunked' };
  }
  if (headerCount(head, 'content-length') > 0) {
    if (cl.length === 0) throw bad('HPE_INVALID_CONTENT_LENGTH', 'an empty Content-Length');
    const first = cl[0] as string;
    if (!/^\d{1,15}$/.test(first)) throw bad('HPE_INVALID_CONTENT_LENGTH', `Content-Length ${JSON.stringify(first.slice(0, 40))} is not a valid length`);
    if (cl.some((v) => v !== first)) throw bad('HPE_UNEXPECTED_CONTENT_LENGTH', 'differing Content-Length values');
    const length = Number(first);
    return length === 0 ? { kind: 'none' } : { kind: 'length', length };
  }
  return { kind: 'none' };
}
