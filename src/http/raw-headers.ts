/**
 * ALL_RAW → Node's flat rawHeaders: wire order, original case, duplicates kept (P9). IIS's line separator is not
 * documented (ISAPI.md §6, §14), so CRLF and bare LF are both accepted; an obs-fold continuation line (leading
 * space or tab) joins the previous value with one space, as RFC 9112 §5.2 allows a recipient to do.
 */
export function parseAllRaw(allRaw: string): string[] {
  const raw: string[] = [];
  for (const line of allRaw.split(/\r?\n/)) {
    if (line.length === 0) continue;
    if ((line[0] === ' ' || line[0] === '\t') && raw.length >= 2) {
      raw[raw.length - 1] = `${raw[raw.length - 1]} ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    raw.push(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return raw;
}

export function hasHeader(raw: readonly string[], lowerName: string): boolean {
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === lowerName) return true;
  return false;
}

/**
 * The fallback when ALL_RAW cannot be read: rebuild raw headers from ALL_HTTP (`HTTP_NAME:value` lines). Lossy, as
 * ISAPI.md §13 item 11 says (original case and `_` versus `-` are gone), so names are rebuilt as `Content-Type`
 * style; CONTENT_TYPE and CONTENT_LENGTH, which CGI keeps outside ALL_HTTP, are added when missing.
 */
export function rawFromAllHttp(allHttp: string, contentType: string | null, contentLength: string | null): string[] {
  const raw: string[] = [];
  for (const line of allHttp.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 5 || !line.startsWith('HTTP_')) continue;
    const name = line
      .slice(5, colon)
      .split('_')
      .map((part) => part.charAt(0) + part.slice(1).toLowerCase())
      .join('-');
    raw.push(name, line.slice(colon + 1).trim());
  }
  if (contentType && !hasHeader(raw, 'content-type')) raw.push('Content-Type', contentType);
  if (contentLength && !hasHeader(raw, 'content-length')) raw.push('Content-Length', contentLength);
  return raw;
}
