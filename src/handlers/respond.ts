/**
 * Answer a request straight on the ECB, without building (req, res): for refusals the library makes itself
 * (503 during shutdown or overload) where involving the app would be wrong. The response is complete and
 * self-delimiting, and the session ends with exactly one DONE_WITH_SESSION.
 */
import type { Ecb } from '../ecb/ecb.js';
import { HSE_STATUS_SUCCESS } from '../ecb/constants.js';

export function respondDirect(ecb: Ecb, status: number, reason: string, extraHeaders = ''): void {
  const body = Buffer.from(`${reason}\n`);
  try {
    ecb.httpStatusCode = status;
    ecb.sendResponseHeaders({
      status: `${status} ${reason}`,
      headers: `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n${extraHeaders}\r\n`,
      keepConn: false,
    });
    ecb.writeClient(body);
  } catch {
    // The client may be gone; the session must still end.
  }
  if (!ecb.done) ecb.doneWithSession(HSE_STATUS_SUCCESS);
}
