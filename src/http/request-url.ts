/**
 * The request target an app sees. Always the *raw* target, never IIS's decoded path, so `%2F` and `%3F` keep their
 * meaning: UNENCODED_URL, then HTTP_URL, then URL + QUERY_STRING (ISAPI.md §6).
 *
 * An IIS application lives at a virtual path (APPL_MD_PATH `/LM/W3SVC/1/ROOT/shop` → `/shop`). Like Express's
 * `app.use('/shop', ...)`, the mount path is stripped, case-insensitively (IIS paths are), so the app routes
 * `/cart` whatever the site layout. `keepMountPath` keeps the full path.
 */
import type { Ecb } from '../ecb/ecb.js';

export interface RequestTarget {
  /** What `req.url` becomes. */
  readonly url: string;
  /** The raw target as IIS received it. */
  readonly rawUrl: string;
  /** The application's virtual path (`/shop`), or `''` at the site root. */
  readonly mountPath: string;
}

export function mountPathOf(applMdPath: string | null): string {
  if (!applMdPath) return '';
  const m = /\/ROOT(\/.*)?$/i.exec(applMdPath);
  const v = m?.[1] ?? '';
  return v.replace(/\/+$/, '');
}

export function stripMountPath(url: string, mountPath: string): string {
  if (mountPath === '') return url;
  if (url.length < mountPath.length || url.slice(0, mountPath.length).toLowerCase() !== mountPath.toLowerCase()) return url;
  const rest = url.slice(mountPath.length);
  if (rest === '') return '/';
  if (rest[0] === '/') return rest;
  if (rest[0] === '?') return '/' + rest;
  return url; // `/shopping` is not under `/shop`
}

export function requestTarget(ecb: Ecb, keepMountPath: boolean): RequestTarget {
  let raw = ecb.getServerVariableString('UNENCODED_URL') ?? ecb.getServerVariableString('HTTP_URL');
  if (!raw) {
    const path = ecb.getServerVariableString('URL') ?? '/';
    const query = ecb.queryString;
    raw = query ? `${path}?${query}` : path;
  }
  const mountPath = mountPathOf(ecb.getServerVariableString('APPL_MD_PATH'));
  return { url: keepMountPath ? raw : stripMountPath(raw, mountPath), rawUrl: raw, mountPath };
}
