/**
 * The one framing policy (DESIGN.md "Node produces the response head"; ISAPI.md §7.2, §13 item 6).
 *
 * IIS does not frame ISAPI bodies: without Content-Length or chunked framing it ends the body by closing the
 * connection. So:
 * - HTTP/1.1: Content-Length, or Node's own chunk framing passed through verbatim (trailers included). The
 *   connection may stay open only when the body is self-delimiting, the client keeps connections alive
 *   (HSE_REQ_IS_KEEP_CONN, which set res.shouldKeepAlive) and Node did not decide to close (`Connection: close`).
 * - HTTP/1.0: the connection closes after the response, and a body Node chunk-framed is de-chunked (RFC 9112 §6.1).
 * - HTTP/2 and later: http.sys frames the stream, so no chunk framing and no Transfer-Encoding header go out;
 *   if the app forced `Transfer-Encoding: chunked`, the body is de-chunked on the way (chunked-decoder.ts).
 *   Unverified on IIS: that http.sys accepts an HTTP/2 ISAPI response without Content-Length (ISAPI.md §14).
 */
import type { ParsedHead } from './response-head.js';

export interface FramingInput {
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly method: string;
  readonly head: ParsedHead;
}

export interface Framing {
  /** fKeepConn. */
  readonly keepConn: boolean;
  /** Header names to leave out of pszHeader, beyond Date/Connection/Keep-Alive. */
  readonly drop: ReadonlySet<string>;
  /** The body Node writes is chunk-framed and must be de-chunked before WriteClient (HTTP/2+ only). */
  readonly dechunk: boolean;
  /** Why the connection closes, for the log and the tests; null when it stays open. */
  readonly closeReason: string | null;
}

const NONE: ReadonlySet<string> = new Set();
const H2_DROP: ReadonlySet<string> = new Set(['transfer-encoding', 'upgrade', 'proxy-connection', 'te']);
const TE_DROP: ReadonlySet<string> = new Set(['transfer-encoding']);

export function isChunked(head: ParsedHead): boolean {
  const te = head.value('transfer-encoding');
  return te !== undefined && /(?:^|,)\s*chunked\s*$/i.test(te);
}

export function hasNoBody(method: string, statusCode: number): boolean {
  return method === 'HEAD' || statusCode === 204 || statusCode === 304 || (statusCode >= 100 && statusCode < 200);
}

export function framingFor(input: FramingInput): Framing {
  const { head } = input;
  if (input.httpVersionMajor >= 2) {
    return { keepConn: true, drop: H2_DROP, dechunk: isChunked(head), closeReason: null };
  }
  if (input.httpVersionMajor === 1 && input.httpVersionMinor === 0) {
    // A server must not send Transfer-Encoding to an HTTP/1.0 client (RFC 9112 §6.1), yet Node frames a body the app
    // marked chunked anyway (and @hono/node-server marks every streamed body): drop the header and de-chunk; the
    // closed connection ends the body.
    const chunked = isChunked(head);
    return { keepConn: false, drop: chunked ? TE_DROP : NONE, dechunk: chunked, closeReason: 'HTTP/1.0' };
  }
  const selfDelimiting = hasNoBody(input.method, head.statusCode) || head.names.has('content-length') || isChunked(head);
  if (!selfDelimiting) return { keepConn: false, drop: NONE, dechunk: false, closeReason: 'body is not self-delimiting' };
  const connection = head.value('connection');
  if (connection !== undefined && /(?:^|,)\s*close\s*(?:,|$)/i.test(connection)) {
    return { keepConn: false, drop: NONE, dechunk: false, closeReason: 'Connection: close' };
  }
  return { keepConn: true, drop: NONE, dechunk: false, closeReason: null };
}
