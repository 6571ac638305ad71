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
