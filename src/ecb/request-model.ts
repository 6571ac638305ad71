/**
 * One request, described the way a client sent it, and everything IIS would derive from it: the ECB fields,
 * the server variables (ALL_RAW, ALL_HTTP, HTTP_*, HEADER_*, UNICODE_*), the read-ahead split of the body.
 * MockEcb, EmulatedHost and the C reference host are all built from this single model, so the three ECB forms
 * agree by construction and the behaviour table can compare them.
 *
 * Where IIS's exact output is undocumented (ISAPI.md §14: line separators in ALL_RAW, the joiner for repeated
 * headers in HTTP_*), the choice made here is a policy, named in the comment beside it.
 */
import { IsapiError, ErrorCodes } from '../errors.js';
import { HSE_LOG_BUFFER_LEN } from './constants.js';

/** cbTotalBytes value meaning "unknown or ≥ 4 GiB" (ISAPI.md §5, §8). */
export const UNKNOWN_LENGTH = 0xffffffff;
/** IIS's default uploadReadAheadSize (ISAPI.md §5). */
export const DEFAULT_READ_AHEAD = 49152;

export type HeaderInput =
  | Readonly<Record<string, string | number | readonly string[] | undefined>>
  | readonly (readonly [string, string])[]
  /** Node-style flat raw pairs: [name, value, name, value, ...]. */
  | readonly string[];

export type BodyInput = string | Buffer | Uint8Array | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>;

export interface RequestDescription {
  /** Default `GET`. */
  readonly method?: string;
  /** The raw request target as sent, path and query: `/shop/cart?id=1`. Default `/`. */
  readonly url?: string;
  readonly headers?: HeaderInput;
  readonly body?: BodyInput;
  /** The client sent no length (chunked upload): cbTotalBytes = 0xFFFFFFFF, read until 0 bytes. */
  readonly unknownLength?: boolean;
  /** Server variables to set or override; `null` means "exists but has no data" (ERROR_NO_DATA, 232). */
  readonly serverVariables?: Readonly<Record<string, string | null | undefined>>;
  /** uploadReadAheadSize: how much of the body arrives in lpbData. Default 49152. */
  readonly readAhead?: number;
  /** `1.0`, `1.1` (default), `2` or `3`: becomes SERVER_PROTOCOL. */
  readonly httpVersion?: string;
  /** Simulate a client that disconnects after sending this many body bytes: ReadClient then yields 0. */
  readonly abortAfterBytes?: number;
  /**
   * The headers are exactly what a real client sent (createServer's front end): add neither `Host` nor
   * `Content-Length`, so ALL_RAW shows the request as it came off the wire. Default false.
   */
  readonly asReceived?: boolean;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// UTF-16 units the ANSI projection (toAnsi) turns into '?'.
const NON_LATIN1 = /[\u0100-\uffff]/;
const NON_LATIN1_ALL = /[\u0100-\uffff]/g;
// Field values may hold any byte but CR, LF and NUL (RFC 9110 §5.5); latin1 is how Node reads them.
const BAD_VALUE = /[\r\n\0]/;

/** Why a description is rejected: a clear coded error, never a silent fix-up. */
function invalid(message: string): IsapiError {
  return new IsapiError(ErrorCodes.INVALID_REQUEST, message);
}

/** Encode as the ANSI code page would: bytes for U+0000–U+00FF, '?' for anything else (WideCharToMultiByte's default char). */
export function toAnsi(text: string): Buffer {
  const out = Buffer.allocUnsafe(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out[i] = c <= 0xff ? c : 0x3f;
  }
  return out;
}

/** Any accepted header input as [name, value] pairs, validated. */
export function normaliseHeaders(input: HeaderInput | undefined): [string, string][] {
  const pairs: [string, string][] = [];
  if (input === undefined) return pairs;
  if (Array.isArray(input)) {
    if (input.length > 0 && typeof input[0] === 'string') {
      const flat = input as readonly string[];
      if (flat.length % 2 !== 0) throw invalid('headers given as a flat array must hold name/value pairs (even length)');
      for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i] as string, flat[i + 1] as string]);
    } else {
      for (const pair of input as readonly (readonly [string, string])[]) {
        if (!Array.isArray(pair) || pair.length !== 2) throw invalid('headers given as an array must hold [name, value] pairs');
        pairs.push([String(pair[0]), String(pair[1])]);
      }
    }
  } else {
    const record = input as Record<string, unknown>;
    for (const name in record) {
      if (!Object.prototype.hasOwnProperty.call(record, name)) continue;
      const value = record[name];
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) pairs.push([name, String(v)]);
      else pairs.push([name, String(value)]);
    }
  }
  for (const [name, value] of pairs) {
    if (!TOKEN.test(name)) throw invalid(`header name ${JSON.stringify(name)} is not a valid HTTP token`);
    if (BAD_VALUE.test(value)) throw invalid(`header ${name} has a value with CR, LF or NUL`);
  }
  return pairs;
}

/** A finite body source as the host sees it: the bytes the client sends, possibly streamed. */
export class BodySource {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended: boolean;
  private delivered = 0;
  private readonly iterator: AsyncIterator<Uint8Array | string> | Iterator<Uint8Array | string> | null;
  private readonly abortAfter: number;

  constructor(body: BodyInput | undefined, abortAfterBytes: number | undefined) {
    this.abortAfter = abortAfterBytes ?? Infinity;
    if (body === undefined) {
      this.iterator = null;
      this.ended = true;
    } else if (typeof body === 'string' || body instanceof Uint8Array) {
      const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      if (buf.length > 0) this.push(buf);
      this.iterator = null;
      this.ended = true;
    } else if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
      this.iterator = (body as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]();
      this.ended = false;
    } else if (typeof (body as Iterable<unknown>)[Symbol.iterator] === 'function') {
      this.iterator = (body as Iterable<Uint8Array | string>)[Symbol.iterator]();
      this.ended = false;
      this.drainSyncIterator();
    } else {
      throw invalid('body must be a string, Buffer, Uint8Array, iterable or async iterable');
    }
  }

  /** The whole body when it is known without awaiting (string, Buffer, sync iterable); otherwise null. */
  get knownLength(): number | null {
    return this.ended ? this.buffered : null;
  }

  get finished(): boolean {
    return (this.ended && this.buffered === 0) || this.delivered >= this.abortAfter;
  }

  /** True when the simulated client disconnected before the body was complete. */
  get aborted(): boolean {
    return this.delivered >= this.abortAfter && !(this.ended && this.buffered === 0);
  }

  private push(chunk: Uint8Array | string): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (buf.length === 0) return;
    this.chunks.push(buf);
    this.buffered += buf.length;
  }

  private drainSyncIterator(): void {
    const it = this.iterator as Iterator<Uint8Array | string>;
    for (let r = it.next(); !r.done; r = it.next()) this.push(r.value);
    this.ended = true;
  }

  /** Bytes available now without waiting, at most `max`; an empty Buffer when none are buffered. */
  takeSync(max: number): Buffer {
    const limit = Math.min(max, this.abortAfter - this.delivered);
    if (limit <= 0 || this.buffered === 0) return Buffer.alloc(0);
    const parts: Buffer[] = [];
    let want = limit;
    while (want > 0 && this.chunks.length > 0) {
      const head = this.chunks[0] as Buffer;
      if (head.length <= want) {
        parts.push(head);
        this.chunks.shift();
        want -= head.length;
      } else {
        parts.push(head.subarray(0, want));
        this.chunks[0] = head.subarray(want);
        want = 0;
      }
    }
    const out = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    this.buffered -= out.length;
    this.delivered += out.length;
    return out;
  }

  /** Wait until at least one byte is buffered or the source has ended, then take up to `max` bytes. */
  async take(max: number): Promise<Buffer> {
    while (this.buffered === 0 && !this.ended && this.delivered < this.abortAfter) {
      const r = await (this.iterator as AsyncIterator<Uint8Array | string>).next();
      if (r.done) this.ended = true;
      else this.push(r.value);
    }
    return this.takeSync(max);
  }

  /** Fill up to `max` bytes, waiting as IIS does before it calls the extension (read-ahead). */
  async fill(max: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < max) {
      const chunk = await this.take(max - got);
      if (chunk.length === 0) break;
      parts.push(chunk);
      got += chunk.length;
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  /** Read everything left (used by the C host, which takes the body as one block). */
  async readAll(): Promise<Buffer> {
    return this.fill(Infinity);
  }
}

/** What a variable lookup yields: bytes without the terminator, `null` for no data (232), `undefined` for unknown (1413). */
export type VariableLookup = Buffer | null | undefined;

/** The request as IIS would present it to an extension. */
export class RequestModel {
  readonly method: string;
  /** The raw request target, exactly as sent. */
  readonly rawUrl: string;
  /** The path part, still encoded. */
  readonly rawPath: string;
  readonly queryString: string;
  /** The decoded path (the URL server variable). */
  readonly path: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly httpVersion: string;
  readonly readAheadSize: number;
  /** cbTotalBytes. */
  readonly totalBytes: number;
  readonly body: BodySource;
  /**
   * The server variables by upper-case name. A plain object, built as one literal: a Map filled from a spread copy
   * cost a fifth of a whole inject() (bench/compare.ts). Safe as a dictionary because every key stored and asked
   * for is upper-case, and no property of Object.prototype is.
   */
  private vars!: Record<string, string | null>;
  /** No variable holds a UTF-16 unit above U+00FF, so the ANSI projection changes nothing (lookupString). */
  private latin1Only = false;

  constructor(desc: RequestDescription = {}) {
    if (desc === null || typeof desc !== 'object') throw invalid('a request description must be an object');
    const method = desc.method ?? 'GET';
    if (typeof method !== 'string' || !TOKEN.test(method)) throw invalid(`method ${JSON.stringify(method)} is not a valid HTTP token`);
    this.method = method.toUpperCase();
    const url = desc.url ?? '/';
    if (typeof url !== 'string' || url.length === 0 || /[\s\0]/.test(url)) {
      throw invalid(`url ${JSON.stringify(url)} must be a non-empty request target without whitespace`);
    }
    if (!url.startsWith('/') && url !== '*') throw invalid(`url ${JSON.stringify(url)} must start with "/" (origin form) or be "*"`);
    this.rawUrl = url;
    const q = url.indexOf('?');
    this.rawPath = q === -1 ? url : url.slice(0, q);
    this.queryString = q === -1 ? '' : url.slice(q + 1);
    this.path = safeDecodePath(this.rawPath);

    const version = desc.httpVersion ?? '1.1';
    if (!/^(1\.0|1\.1|2|3)$/.test(version)) throw invalid(`httpVersion ${JSON.stringify(version)} must be 1.0, 1.1, 2 or 3`);
    this.httpVersion = version;

    const readAhead = desc.readAhead ?? DEFAULT_READ_AHEAD;
    if (!Number.isInteger(readAhead) || readAhead < 0) throw invalid(`readAhead must be a non-negative integer, got ${readAhead}`);
    this.readAheadSize = readAhead;
    if (desc.abortAfterBytes !== undefined && (!Number.isInteger(desc.abortAfterBytes) || desc.abortAfterBytes < 0)) {
      throw invalid('abortAfterBytes must be a non-negative integer');
    }

    this.body = new BodySource(desc.body, desc.abortAfterBytes);
    const headers = normaliseHeaders(desc.headers);
    const has = (n: string): boolean => headers.some(([k]) => k.toLowerCase() === n);
    // Like any client, send Host; a test that wants none can say so with an explicit empty serverVariables entry.
    if (!has('host') && !desc.asReceived) headers.unshift(['Host', 'localhost']);

    const declared = headers.find(([k]) => k.toLowerCase() === 'content-length');
    const known = this.body.knownLength;
    if (desc.unknownLength) {
      if (declared) throw invalid('unknownLength contradicts the Content-Length header');
      if (!has('transfer-encoding')) headers.push(['Transfer-Encoding', 'chunked']);
      this.totalBytes = UNKNOWN_LENGTH;
    } else if (declared) {
      const n = Number(declared[1]);
      if (!/^\d+$/.test(declared[1]) || n >= UNKNOWN_LENGTH) throw invalid(`Content-Length ${declared[1]} is not a valid length`);
      if (known !== null && known !== n) throw invalid(`Content-Length ${n} does not match the body length ${known}`);
      this.totalBytes = n;
    } else if (known === null) {
      throw invalid('a streamed body needs a Content-Length header or unknownLength: true');
    } else {
      if (known >= UNKNOWN_LENGTH) throw invalid('a body of 4 GiB or more needs unknownLength: true');
      if (!desc.asReceived && (known > 0 || ['POST', 'PUT', 'PATCH'].includes(this.method))) headers.push(['Content-Length', String(known)]);
      this.totalBytes = known;
    }
    this.headers = headers;
    this.deriveVariables(desc.serverVariables ?? {});
  }

  private header(name: string): string | undefined {
    const lower = name.toLowerCase();
    return this.headers.find(([k]) => k.toLowerCase() === lower)?.[1];
  }

  private deriveVariables(overrides: Readonly<Record<string, string | null | undefined>>): void {
    const upper: Record<string, string | null> = {};
    let overridden = false;
    for (const k in overrides) {
      if (!Object.prototype.hasOwnProperty.call(overrides, k)) continue;
      const v = overrides[k];
      if (v === undefined) continue;
      upper[k.toUpperCase()] = v;
      overridden = true;
    }
    const https = (upper.HTTPS ?? 'off').toLowerCase() === 'on';
    const host = this.header('host') ?? '';
    const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(host);
    const protocol = this.httpVersion === '1.0' || this.httpVersion === '1.1' ? `HTTP/${this.httpVersion}` : `HTTP/${this.httpVersion}`;
    const contentType = this.header('content-type');
    const base: Record<string, string | null> = {
      REQUEST_METHOD: this.method,
      HTTP_METHOD: this.method,
      QUERY_STRING: this.queryString,
      URL: this.path,
      PATH_INFO: this.path,
      SCRIPT_NAME: this.path,
      PATH_TRANSLATED: 'C:\\inetpub\\wwwroot' + this.path.replace(/\//g, '\\'),
      HTTP_URL: this.rawUrl,
      UNENCODED_URL: this.rawUrl,
      CACHE_URL: `http${https ? 's' : ''}://${host}${this.rawUrl}`,
      SERVER_PROTOCOL: protocol,
      HTTP_VERSION: protocol,
      SERVER_NAME: (m?.[1] || 'localhost').replace(/^\[|\]$/g, ''),
      SERVER_PORT: m?.[2] ?? (https ? '443' : '80'),
      SERVER_PORT_SECURE: https ? '1' : '0',
      HTTPS: https ? 'on' : 'off',
      REMOTE_ADDR: '127.0.0.1',
      REMOTE_HOST: '127.0.0.1',
      REMOTE_PORT: '50000',
      LOCAL_ADDR: '127.0.0.1',
      SERVER_ADDR: '127.0.0.1',
      SERVER_SOFTWARE: 'Microsoft-IIS/10.0',
      GATEWAY_INTERFACE: 'CGI/1.1',
      CONTENT_TYPE: contentType ?? '',
      AUTH_TYPE: '',
      AUTH_USER: '',
      AUTH_PASSWORD: '',
      REMOTE_USER: '',
      UNMAPPED_REMOTE_USER: '',
      LOGON_USER: '',
      INSTANCE_ID: '1',
      INSTANCE_META_PATH: '/LM/W3SVC/1',
      APPL_MD_PATH: '/LM/W3SVC/1/ROOT',
      APPL_PHYSICAL_PATH: 'C:\\inetpub\\wwwroot\\',
      APP_POOL_ID: 'DefaultAppPool',
      CERT_FLAGS: '',
    };
    if (this.totalBytes !== UNKNOWN_LENGTH) base.CONTENT_LENGTH = String(this.totalBytes);
    // Policy ALL_RAW/ALL_HTTP line separator: CRLF, as Apache's mod_isapi emits (ISAPI.md §6; unverified on IIS).
    let allRaw = '';
    let allHttp = '';
    for (const [k, v] of this.headers) {
      allRaw += `${k}: ${v}\r\n`;
      allHttp += `HTTP_${k.toUpperCase().replace(/-/g, '_')}:${v}\r\n`;
    }
    base.ALL_RAW = allRaw;
    base.ALL_HTTP = allHttp;
    // Overrides replace a value in place and add new names after the derived ones (the order of `{...base, ...upper}`).
    if (overridden) for (const k in upper) base[k] = upper[k] as string | null;
    this.vars = base;
    // Every value comes from the method (a token), the raw and decoded URL, the headers (all in ALL_RAW), the
    // overrides and constants: if none of those has a unit above U+00FF, no variable has.
    let latin1 = !NON_LATIN1.test(allRaw) && !NON_LATIN1.test(this.rawUrl) && !NON_LATIN1.test(this.path);
    if (latin1 && overridden) for (const k in upper) if (NON_LATIN1.test(upper[k] ?? '')) latin1 = false;
    this.latin1Only = latin1;
  }

  private variable(upperName: string): string | null | undefined {
    return Object.prototype.hasOwnProperty.call(this.vars, upperName) ? this.vars[upperName] : undefined;
  }

  /** ECB fields the host fills from the request. */
  get contentType(): string {
    return this.variable('CONTENT_TYPE') ?? '';
  }
  get pathTranslated(): string {
    return this.variable('PATH_TRANSLATED') ?? '';
  }

  /** Every variable name a host can answer without a header lookup (for hosts that precompute a table). */
  variableNames(): string[] {
    return Object.keys(this.vars);
  }

  /**
   * GetServerVariable as IIS resolves names (ISAPI.md §6): case-insensitive; `HTTP_<NAME>` matches a header
   * with `-` written as `_`; `HEADER_<Name>` matches literally; `UNICODE_` works for server variables only.
   * Policy for repeated headers in HTTP_ and HEADER_ lookups: joined with ", " (unverified on IIS).
   */
  lookup(name: string): VariableLookup {
    const upper = name.toUpperCase();
    const text = this.lookupText(upper);
    if (text === undefined || text === null) return text;
    return upper.startsWith('UNICODE_') ? Buffer.from(text, 'utf16le') : toAnsi(text);
  }

  /**
   * lookup() as the text a caller decodes from its bytes (UNICODE_* as UTF-16LE, the rest as latin1): the same
   * answer without building and decoding a Buffer. For MockEcb's getServerVariableString.
   */
  lookupString(name: string): string | null | undefined {
    const upper = name.toUpperCase();
    const text = this.lookupText(upper);
    if (text === undefined || text === null || this.latin1Only || upper.startsWith('UNICODE_')) return text;
    // toAnsi then latin1: every UTF-16 unit above U+00FF becomes '?'.
    return NON_LATIN1.test(text) ? text.replace(NON_LATIN1_ALL, '?') : text;
  }

  /** The variable's value before encoding; `upper` is the upper-cased name. */
  private lookupText(upper: string): string | null | undefined {
    if (upper.startsWith('UNICODE_')) {
      const base = upper.slice(8);
      if (base.startsWith('HTTP_') || base.startsWith('HEADER_') || base.startsWith('ALL_')) return undefined;
      return this.variable(base);
    }
    const explicit = this.variable(upper);
    if (explicit !== undefined) return explicit;
    const http = upper.startsWith('HTTP_');
    if (!http && !upper.startsWith('HEADER_')) return undefined;
    const want = upper.slice(http ? 5 : 7);
    let joined: string | undefined;
    for (const [k, v] of this.headers) {
      if ((http ? k.toUpperCase().replace(/-/g, '_') : k.toUpperCase()) !== want) continue;
      joined = joined === undefined ? v : `${joined}, ${v}`;
    }
    return joined;
  }

  /** What the client asked for: HTTP/1.1 keeps the connection unless `Connection: close`; 1.0 only with keep-alive. */
  clientKeepsAlive(): boolean {
    const connection = (this.lookup('HTTP_CONNECTION')?.toString('latin1') ?? '').toLowerCase();
    if (this.httpVersion === '1.0') return /\bkeep-alive\b/.test(connection);
    return !/\bclose\b/.test(connection);
  }

  /** Bytes of the terminating NUL for a variable: 2 for UNICODE_*, else 1. */
  static terminatorSize(name: string): number {
    return name.toUpperCase().startsWith('UNICODE_') ? 2 : 1;
  }
}

/** Decode a path as IIS does for the URL variable; an invalid escape leaves the path as sent. */
function safeDecodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** True when `text` fits lpszLogData as it is: ASCII (so its UTF-8 is itself) and at most 79 characters. */
export function fitsLogData(text: string): boolean {
  return text.length < HSE_LOG_BUFFER_LEN && ASCII.test(text);
}
// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;

/** Truncate a log note to fit lpszLogData (80 bytes with NUL) without splitting a UTF-8 sequence. */
export function truncateLogData(text: string): Buffer {
  const max = HSE_LOG_BUFFER_LEN - 1;
  if (fitsLogData(text)) return Buffer.from(text, 'latin1');
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= max) return bytes;
  let end = max;
  // Step back over continuation bytes (10xxxxxx) so a multi-byte character is never cut in half.
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}
