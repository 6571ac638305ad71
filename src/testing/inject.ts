/**
 * inject(): unit-test an app through the *full* ISAPI path, without IIS and without a socket.
 *
 * The app is wrapped exactly as in production (toRequestListener → SimpleHandler → createExtension), the request
 * becomes an ECB (MockEcb by default; EmulatedHost, i.e. real native memory and NativeEcb, with `native: true`),
 * and the answer is read back from what the host recorded: the status from pszStatus, the headers from pszHeader,
 * the body as the client would get it (chunk framing removed, trailers parsed).
 *
 * No global side effects (P1): nothing is patched; the only module state is a WeakMap from app to its extension,
 * so that an app is composed once (P18) and collected with the app.
 */
import { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { HSE_STATUS_PENDING } from '../ecb/constants.js';
import { MockEcb, type MockEcbOptions } from '../ecb/mock-ecb.js';
import type { RecordedResponse } from '../ecb/recorded-response.js';
import { normaliseHeaders, type BodyInput, type HeaderInput, type RequestDescription } from '../ecb/request-model.js';
import { IsapiError, ErrorCodes } from '../errors.js';
import { createExtension, type IsapiExtension } from '../handlers/create-extension.js';
import { SimpleHandler, type SimpleHandlerOptions } from '../handlers/simple-handler.js';
import type { AppLike } from '../handlers/to-request-listener.js';
import { ChunkedDecoder } from '../http/chunked-decoder.js';
import { setRawHeaders } from '../http/node-internals.js';
import { EmulatedHost } from '../host/emulated-host.js';

export interface InjectRequest extends Omit<RequestDescription, 'body' | 'headers'> {
  readonly headers?: HeaderInput;
  /** A string, Buffer, Readable, async iterable, or a plain object / array (sent as JSON). */
  readonly body?: BodyInput | Readable | Record<string, unknown> | unknown[] | null;
}

export interface InjectOptions extends SimpleHandlerOptions {
  /** Run on EmulatedHost (real native ECB memory, NativeEcb, koffi callbacks) instead of MockEcb. */
  readonly native?: boolean;
  /** Answer to HSE_REQ_IS_KEEP_CONN and other host-side knobs (failWritesAfterBytes, clientCertificate, ...). */
  readonly host?: MockEcbOptions;
}

export interface InjectResponse {
  readonly statusCode: number;
  readonly statusMessage: string;
  /** Lower-cased, aggregated by Node's rules (set-cookie is an array). */
  readonly headers: IncomingMessage['headers'];
  /** Wire order and case, as in pszHeader. */
  readonly rawHeaders: string[];
  /** The body as a client receives it: chunk framing removed. */
  readonly body: Buffer;
  /** Trailers sent after a chunked body. */
  readonly trailers: Record<string, string>;
  /** fKeepConn as sent to IIS. */
  readonly keepConn: boolean;
  /** lpszLogData at the end of the session. */
  readonly logData: string;
  /** Everything the host recorded, for lower-level assertions (DONE status, CLOSE_CONNECTION, flush flag, ...). */
  readonly record: RecordedResponse;
  text(): string;
  json<T = unknown>(): T;
}

const extensions = new WeakMap<object, Map<string, IsapiExtension>>();
/** Functions in options are told apart by identity, never by their source text. */
const functionIds = new WeakMap<object, number>();
let nextFunctionId = 1;

/** True when `o` has no own enumerable string key (the common `inject(app, request)` with no options). */
function isEmpty(o: object): boolean {
  for (const k in o) if (Object.prototype.hasOwnProperty.call(o, k)) return false;
  return true;
}

function extensionFor(app: AppLike, options: SimpleHandlerOptions): IsapiExtension {
  // Options change how the handler behaves, so an app gets one extension per distinct option set.
  const key = isEmpty(options) ? '{}' : JSON.stringify(options, (_k, v: unknown) => {
    if (typeof v !== 'function') return v;
    let id = functionIds.get(v);
    if (id === undefined) functionIds.set(v, (id = nextFunctionId++));
    return `fn#${id}`;
  });
  let byOptions = extensions.get(app as object);
  if (!byOptions) extensions.set(app as object, (byOptions = new Map()));
  let ext = byOptions.get(key);
  if (!ext) byOptions.set(key, (ext = createExtension(new SimpleHandler(app, options))));
  return ext;
}

function isPlainJson(body: unknown): body is Record<string, unknown> | unknown[] {
  if (body === null || typeof body !== 'object' || Buffer.isBuffer(body) || body instanceof Uint8Array) return false;
  if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' || typeof (body as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return Array.isArray(body);
  }
  return true;
}

function describe(request: InjectRequest): RequestDescription {
  // No body: the request already is a description (RequestModel only reads it). Object rest below is a slow path.
  if (request.body === undefined) return request as RequestDescription;
  const { body, headers, ...rest } = request;
  if (body === undefined || body === null) return { ...rest, headers };
  const pairs = normaliseHeaders(headers);
  const has = (name: string): boolean => pairs.some(([k]) => k.toLowerCase() === name);
  if (isPlainJson(body)) {
    if (!has('content-type')) pairs.push(['Content-Type', 'application/json']);
    return { ...rest, headers: pairs, body: JSON.stringify(body) };
  }
  const streamed = typeof body !== 'string' && !(body instanceof Uint8Array) && typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
  // A stream without a declared length is sent as a client would: chunked, of unknown length.
  return { ...rest, headers: pairs, body: body as BodyInput, unknownLength: rest.unknownLength ?? (streamed && !has('content-length')) };
}

function headerPairs(block: string): string[] {
  const raw: string[] = [];
  for (const line of block.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    raw.push(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return raw;
}

function parseTrailers(framed: Buffer): Record<string, string> {
  const text = framed.toString('latin1');
  const end = text.lastIndexOf('\r\n0\r\n');
  const start = end === -1 ? (text.startsWith('0\r\n') ? 0 : -1) : end + 2;
  if (start === -1) return {};
  const out: Record<string, string> = {};
  for (const line of text.slice(start + 3).split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

function toResponse(record: RecordedResponse): InjectResponse {
  if (record.status === null) {
    throw new IsapiError(ErrorCodes.INVALID_REQUEST, `the app sent no response head${record.closedConnection ? ' (the connection was closed)' : ''}`);
  }
  const rawHeaders = headerPairs(record.headerBlock ?? '');
  const holder = new IncomingMessage(null as never);
  setRawHeaders(holder, rawHeaders);
  const headers = holder.headers;
  const chunked = /(?:^|,)\s*chunked\s*$/i.test(String(headers['transfer-encoding'] ?? ''));
  const body = chunked ? new ChunkedDecoder().push(record.body) : record.body;
  const space = record.status.indexOf(' ');
  return {
    statusCode: Number.parseInt(record.status, 10),
    statusMessage: space === -1 ? '' : record.status.slice(space + 1),
    headers,
    rawHeaders,
    body,
    trailers: chunked ? parseTrailers(record.body) : {},
    keepConn: record.keepConn === true,
    logData: record.logData,
    record,
    text: () => body.toString('utf8'),
    json: <T>() => JSON.parse(body.toString('utf8')) as T,
  };
}

interface SplitOptions {
  readonly native: boolean | undefined;
  readonly host: MockEcbOptions | undefined;
  readonly handler: SimpleHandlerOptions;
}
const NO_OPTIONS_SPLIT: SplitOptions = Object.freeze({ native: undefined, host: undefined, handler: Object.freeze({}) });
function splitOptions(options: InjectOptions): SplitOptions {
  const { native, host, ...handler } = options;
  return { native, host, handler };
}

/**
 * Send one request to `app` through the ISAPI path and resolve with the response once the session has ended.
 * Rejects with ERR_ISAPI_INVALID_REQUEST when the app ends the session without sending a response head.
 */
export async function inject(app: AppLike, request: InjectRequest | string = {}, options: InjectOptions = {}): Promise<InjectResponse> {
  // No options (the common case): skip the object rest, a slow path in V8.
  const { native, host: hostOptions, handler: handlerOptions } = isEmpty(options) ? NO_OPTIONS_SPLIT : splitOptions(options);
  const description = describe(typeof request === 'string' ? { url: request } : request);
  const extension = extensionFor(app, handlerOptions);
  if (native) {
    const host = new EmulatedHost(hostOptions);
    try {
      const result = await host.execute(description, extension.nativeEntryPoints().HttpExtensionProc);
      return toResponse(result);
    } finally {
      host.close();
    }
  }
  const ecb = await MockEcb.from(description, hostOptions);
  const status = extension.dispatch(ecb);
  ecb.record.procResult = status;
  if (status === HSE_STATUS_PENDING) await ecb.whenDone();
  return toResponse(ecb.record);
}
