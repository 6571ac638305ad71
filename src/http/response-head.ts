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

/** parseHead's result: `lineNames[i]` is the lower-cased name of `lines[i]`, so rendering need not find it again. */
class Head implements ParsedHead {
  readonly names = new Set<string>();
  constructor(
    readonly statusCode: number,
    readonly status: string,
    readonly lines: string[],
    readonly lineNames: string[],
  ) {
    for (const name of lineNames) this.names.add(name);
  }

  value(name: string): string | undefined {
    const lower = name.toLowerCase();
    const i = this.lineNames.indexOf(lower);
    if (i === -1) return undefined;
    const line = this.lines[i] as string;
    const colon = line.indexOf(':');
    return colon === -1 ? '' : line.slice(colon + 1).trim();
  }
}

function lowerName(line: string): string {
  const colon = line.indexOf(':');
  return (colon === -1 ? line : line.slice(0, colon)).trim().toLowerCase();
}

export function parseHead(head: string): ParsedHead {
  const end = head.endsWith('\r\n\r\n') ? head.length - 4 : head.length;
  let eol = head.indexOf('\r\n');
  if (eol === -1 || eol > end) eol = end;
  const statusLine = head.slice(0, eol);
  const sp = statusLine.indexOf(' ');
  const status = sp === -1 ? '200 OK' : statusLine.slice(sp + 1);
  const statusCode = Number.parseInt(status, 10);
  const lines: string[] = [];
  const lineNames: string[] = [];
  for (let start = eol + 2; start < end; ) {
    let next = head.indexOf('\r\n', start);
    if (next === -1 || next > end) next = end;
    if (next > start) {
      const line = head.slice(start, next);
      lines.push(line);
      lineNames.push(lowerName(line));
    }
    start = next + 2;
  }
  return new Head(statusCode, status, lines, lineNames);
}

/** Header names IIS owns or that only make sense hop by hop. */
export const ALWAYS_DROPPED = new Set(['date', 'connection', 'keep-alive']);

/** pszHeader: the kept lines, CRLF-joined, ending in the blank line. */
export function renderIsapiHeaders(head: ParsedHead, drop: ReadonlySet<string>): string {
  const known = head instanceof Head ? head.lineNames : null;
  let out = '';
  head.lines.forEach((line, i) => {
    const name = known ? (known[i] as string) : lowerName(line);
    if (ALWAYS_DROPPED.has(name) || drop.has(name)) return;
    out += line + '\r\n';
  });
  return out + '\r\n';
}
