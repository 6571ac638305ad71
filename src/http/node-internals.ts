/**
 * Every use of Node's private HTTP internals lives here, and nowhere else (pitfalls P3, P17).
 * test/http/node-internals.test.ts pins each assumption on the running Node, so a Node upgrade that moves one
 * fails there, by name, instead of somewhere deep in a request.
 *
 * - `res._header`: the exact head Node rendered (lib/_http_outgoing.js, `_storeHeader`). We split it from the
 *   first bytes Node writes to the socket; it is the source of truth for headers set through writeHead (P11).
 * - `req._addHeaderLines(raw, n)`: the only way to make Node's lazy `headers`/`headersDistinct` getters walk our
 *   rawHeaders with Node's own aggregation rules (lib/_http_incoming.js; P9).
 * - `res[kNeedDrain]`: set by OutgoingMessage.write when the socket refused more; Node's *server* turns the
 *   socket's 'drain' into the response's 'drain' (socketOnDrain in lib/_http_server.js). We are that server.
 * - `socket._httpMessage`: the response assigned to a socket (ServerResponse#assignSocket sets it); the socket
 *   reads it to find the head Node rendered.
 * - `socket._hadError`: net.Socket's flag; OutgoingMessage's onFinish skips 'finish' when it is set. It must be set
 *   before a failed write's callback runs, because Node calls that callback before it destroys the socket.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

interface OutgoingInternals {
  _header?: string | null;
}

interface IncomingInternals {
  _addHeaderLines?: (headers: string[], n: number) => void;
}

/** The head Node rendered for `res`, or null before it rendered one. */
export function renderedHead(res: ServerResponse): string | null {
  const h = (res as unknown as OutgoingInternals)._header;
  return typeof h === 'string' ? h : null;
}

/** Give `req` its raw headers the way Node's parser does, so `req.headers` follows Node's rules. */
export function setRawHeaders(req: IncomingMessage, raw: string[]): void {
  const add = (req as unknown as IncomingInternals)._addHeaderLines;
  if (typeof add !== 'function') throw new Error('isapi-http: this Node has no IncomingMessage#_addHeaderLines; see src/http/node-internals.ts');
  add.call(req, raw, raw.length);
}

let kNeedDrain: symbol | null | undefined;

/** Node's private kNeedDrain symbol, found once by its description on a real ServerResponse. */
export function needDrainSymbol(res: ServerResponse): symbol | null {
  if (kNeedDrain !== undefined) return kNeedDrain;
  kNeedDrain = Object.getOwnPropertySymbols(res).find((s) => s.description === 'kNeedDrain') ?? null;
  return kNeedDrain;
}

/** What Node's server does on socket 'drain': forward it to the response if the response is waiting for it. */
export function forwardDrain(res: ServerResponse): void {
  const k = needDrainSymbol(res);
  if (k === null) return;
  const r = res as unknown as Record<symbol, unknown>;
  if (r[k] === true && !res.writableEnded) {
    r[k] = false;
    res.emit('drain');
  }
}

/** The response assigned to `socket` by ServerResponse#assignSocket, or null. */
export function attachedResponse(socket: object): ServerResponse | null {
  return (socket as { _httpMessage?: ServerResponse | null })._httpMessage ?? null;
}

/** Mark `socket` as failed, as net.Socket does, so Node emits no 'finish' for its response. */
export function markHadError(socket: object): void {
  (socket as { _hadError?: boolean })._hadError = true;
}
