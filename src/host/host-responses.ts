/**
 * The responses the emulated IIS front end writes itself, without involving the extension: malformed requests,
 * requests outside the application, WebSocket upgrades, and the head IIS builds in front of an extension's
 * pszHeader (ISAPI.md §7.1: "HTTP status, server version, message time").
 *
 * Which server answers: http.sys rejects malformed requests in the kernel before IIS sees them, and such responses
 * are commonly seen with `Server: Microsoft-HTTPAPI/2.0`; everything IIS itself answers says
 * `Server: Microsoft-IIS/10.0`. The exact bodies are ours (short HTML naming the reason), not IIS's error pages.
 */
import { STATUS_CODES } from 'node:http';

export const IIS_SERVER = 'Microsoft-IIS/10.0';
export const HTTPAPI_SERVER = 'Microsoft-HTTPAPI/2.0';

export interface HostResponse {
  readonly statusCode: number;
  readonly bytes: Buffer;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
}

/** A complete, Content-Length-framed response. `close` adds `Connection: close`. */
export function hostResponse(statusCode: number, detail: string, options: { close: boolean; server?: string; head?: boolean; extraHeaders?: string }): HostResponse {
  const reason = STATUS_CODES[statusCode] ?? 'Error';
  const html =
    `<!DOCTYPE html>\r\n<html><head><title>${statusCode} ${escapeHtml(reason)}</title></head>\r\n` +
    `<body><h1>HTTP Error ${statusCode} - ${escapeHtml(reason)}</h1>\r\n<p>${escapeHtml(detail)}</p></body></html>\r\n`;
  const body = Buffer.from(html, 'utf8');
  const head =
    `HTTP/1.1 ${statusCode} ${reason}\r\n` +
    `Content-Type: text/html; charset=utf-8\r\n` +
    `Server: ${options.server ?? IIS_SERVER}\r\n` +
    `Date: ${new Date().toUTCString()}\r\n` +
    (options.close ? 'Connection: close\r\n' : '') +
    (options.extraHeaders ?? '') +
    `Content-Length: ${body.length}\r\n\r\n`;
  const headBytes = Buffer.from(head, 'latin1');
  return { statusCode, bytes: options.head ? headBytes : Buffer.concat([headBytes, body]) };
}

/** The interim response to `Expect: 100-continue`. */
export const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

/**
 * The head IIS puts in front of the extension's header block: the status line from pszStatus, then IIS's own
 * Server and Date, then `connection` (a `Connection:` line or ''), then pszHeader, which ends the head with its
 * own blank line (ISAPI.md §7.1, §13 item 8). Responses always say HTTP/1.1, as http.sys does for 1.0 clients too.
 */
export function iisHead(status: string, connection: string, headerBlock: string): Buffer {
  return Buffer.from(`HTTP/1.1 ${status}\r\nServer: ${IIS_SERVER}\r\nDate: ${new Date().toUTCString()}\r\n${connection}${headerBlock}`, 'latin1');
}
