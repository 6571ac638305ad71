/**
 * Turn the head Node rendered into what HSE_REQ_SEND_RESPONSE_HEADER_EX takes (ISAPI.md §7.1):
 * - the status line loses its protocol and becomes pszStatus (`"200 OK"`);
 * - the header lines stay byte-for-byte as Node wrote them, one per line (so each Set-Cookie keeps its own line,
 *   P16), minus the ones IIS owns: `Date` (IIS adds its own) and the hop-by-hop `Connection` / `Keep-Alive`,
 *   whose job fKeepConn does; the framing policy may drop more (Transfer-Encoding on HTTP/2);
 * - the block ends in CRLF CRLF, which is the extension's job on IIS (ISAPI.md §13 item 8).
 */
export interface ParsedHead {
  readonly statusCode: number;
  /** `"200 OK"`. */
  readonly status: string;
  /** Header lines without their CRLF, in Node's order. */
  readonly lines: readonly string[];
  /** Lower-cased names, for the framing policy. */
  readonly names: ReadonlySet<string>;
  /** The value of a header, first occurrence, or undefined. */
  value(name: string): string | undefined;
}

export function parseHead(head: string): ParsedHead {
  const end = head.endsWith('\r\n\r\n') ? head.length - 4 : head.length;
  const all = head.slice(0, end).split('\r\n');
  const statusLine = all[0] ?? '';
  const sp = statusLine.indexOf(' ');
  const status = sp === -1 ? '200 OK' : statusLine.slice(sp + 1);
  const statusCode = Number.parseInt(status, 10);
  const lines = all.slice(1).filter((l) => l.length > 0);
  const names = new Set<string>();
  const firstValue = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = (colon === -1 ? line : line.slice(0, colon)).trim().toLowerCase();
    names.add(name);
    if (!firstValue.has(name)) firstValue.set(name, colon === -1 ? '' : line.slice(colon + 1).trim());
  }
  return { statusCode, status, lines, names, value: (name) => firstValue.get(name.toLowerCase()) };
}

/** Header names IIS owns or that only make sense hop by hop. */
export const ALWAYS_DROPPED = new Set(['date', 'connection', 'keep-alive']);

/** pszHeader: the kept lines, CRLF-joined, ending in the blank line. */
export function renderIsapiHeaders(head: ParsedHead, drop: ReadonlySet<string>): string {
  let out = '';
  for (const line of head.lines) {
    const colon = line.indexOf(':');
    const name = (colon === -1 ? line : line.slice(0, colon)).trim().toLowerCase();
    if (ALWAYS_DROPPED.has(name) || drop.has(name)) continue;
    out += line + '\r\n';
  }
  return out + '\r\n';
}
