/**
 * `req.isapi`: what IIS knows about the request that plain Node does not. Everything comes from server variables
 * or ServerSupportFunction, never from a request header a client could forge (anchors.md: identity must come
 * from IIS's authentication, not from `X-Forwarded-User`).
 */
import type { CertInfo, Ecb } from '../ecb/ecb.js';

export interface IsapiUser {
  /** AUTH_USER, else REMOTE_USER, else LOGON_USER: `CORP\ann` under Windows authentication. */
  readonly name: string;
  /** AUTH_TYPE: `Negotiate`, `NTLM`, `Basic`, ... */
  readonly authType: string;
  /** LOGON_USER: the Windows account the request runs as (may differ from name with mapping). */
  readonly logonUser: string;
}

export class IsapiRequestInfo {
  /** The ECB, for power users: every Ecb method is available until the session ends. */
  readonly ecb: Ecb;
  /** The request target exactly as IIS received it, mount path included. */
  readonly rawUrl: string;
  /** The IIS application's virtual path (`/shop`), or `''` at the site root. */
  readonly mountPath: string;
  private userValue: IsapiUser | null | undefined;
  private certValue: CertInfo | null | undefined;

  constructor(ecb: Ecb, rawUrl: string, mountPath: string) {
    this.ecb = ecb;
    this.rawUrl = rawUrl;
    this.mountPath = mountPath;
  }

  /** A server variable, decoded (UNICODE_* as UTF-16LE, others as latin1), or null. */
  serverVariable(name: string): string | null {
    return this.ecb.getServerVariableString(name);
  }

  /** The authenticated user, or null for an anonymous request. */
  get user(): IsapiUser | null {
    if (this.userValue !== undefined) return this.userValue;
    const v = (n: string): string => this.ecb.getServerVariableString(n) ?? '';
    const name = v('AUTH_USER') || v('REMOTE_USER') || v('LOGON_USER');
    this.userValue = name ? { name, authType: v('AUTH_TYPE'), logonUser: v('LOGON_USER') } : null;
    return this.userValue;
  }

  /** The client certificate (HSE_REQ_GET_CERT_INFO_EX), read on first use; null when none was presented. */
  clientCertificate(): CertInfo | null {
    if (this.certValue === undefined) this.certValue = this.ecb.getCertInfo();
    return this.certValue;
  }
}
