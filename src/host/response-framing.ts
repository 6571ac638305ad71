/**
 * How the emulated IIS reads an extension's response framing. IIS does not frame ISAPI bodies (ISAPI.md §7.2,
 * §13 item 6): a body is self-delimiting only when pszHeader carries Content-Length or `Transfer-Encoding: chunked`
 * (with the extension writing the chunk frames), or when the response has no body at all (HEAD, 1xx, 204, 304).
 * Otherwise IIS "adds Connection: close and ends the body by closing the connection" (§7.2).
 */
import { ChunkedBodyParser } from './chunked-body.js';

export type ResponseBody = 'none' | 'length' | 'chunked' | 'close';

export interface ResponseFraming {
  readonly statusCode: number;
  readonly body: ResponseBody;
  /** The declared Content-Length, when `body` is 'length'. */
  readonly length: number;
  /** pszHeader already has a Connection line: IIS does not add a second one. */
  readonly hasConnection: boolean;
}

export function analyseResponse(method: string, status: string, headerBlock: string): ResponseFraming {
  const statusCode = Number.parseInt(status, 10);
  let length = -1;
  let chunked = false;
  let hasConnection = false;
  for (const line of headerBlock.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length' && /^\d+$/.test(value)) length = Number(value);
    else if (name === 'transfer-encoding') chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
    else if (name === 'connection') hasConnection = true;
  }
  const noBody = method === 'HEAD' || statusCode === 204 || statusCode === 304 || (statusCode >= 100 && statusCode < 200);
  const body: ResponseBody = noBody ? 'none' : chunked ? 'chunked' : length >= 0 ? 'length' : 'close';
  return { statusCode: Number.isFinite(statusCode) ? statusCode : 0, body, length: Math.max(length, 0), hasConnection };
}

/**
 * Follows the body bytes an extension writes and says whether they ended exactly where the framing says the
 * message ends. A connection is reused only then: extra or missing bytes would corrupt the next response.
 */
export class ResponseBodyTracker {
  private readonly framing: ResponseFraming;
  private readonly chunks: ChunkedBodyParser | null;
  private written = 0;
  private broken = false;

  constructor(framing: ResponseFraming) {
    this.framing = framing;
    this.chunks = framing.body === 'chunked' ? new ChunkedBodyParser() : null;
  }

  /** Body bytes written so far (after the head). */
  get bytes(): number {
    return this.written;
  }

  push(bytes: Buffer): void {
    this.written += bytes.length;
    if (this.broken || !this.chunks) return;
    try {
      const used = this.chunks.push(bytes, () => undefined);
      if (used < bytes.length) this.broken = true;
    } catch {
      this.broken = true;
    }
  }

  /** The message is complete and nothing extra followed it. */
  get complete(): boolean {
    if (this.broken) return false;
    switch (this.framing.body) {
      case 'none':
        return this.written === 0;
      case 'length':
        return this.written === this.framing.length;
      case 'chunked':
        return this.chunks?.done === true;
      default:
        return false;
    }
  }
}
