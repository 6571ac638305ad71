/** EmulatedHost's own duties: native memory freed after each session, callback slots released, misuse refused. */
import { HSE_STATUS_PENDING, HSE_STATUS_SUCCESS } from '../../src/ecb/constants.js';
import { getKoffi } from '../../src/ecb/koffi.js';
import { NativeEcb } from '../../src/ecb/native-ecb.js';
import { releaseIoCompletion } from '../../src/ecb/io-completion.js';
import { ErrorCodes } from '../../src/errors.js';
import { EmulatedHost } from '../../src/host/emulated-host.js';

const koffi = getKoffi();

test('frees every block it allocated once the sessions end, and its four callbacks at close()', async () => {
  const before = koffi.stats().callbacks;
  const host = new EmulatedHost();
  expect(koffi.stats().callbacks).toBe(before + 4);
  const runs = Array.from({ length: 200 }, (_, i) =>
    host.execute({ method: 'POST', url: `/x/${i}`, body: Buffer.alloc(i * 100, 1) }, (p) => {
      const ecb = new NativeEcb(p);
      ecb.sendResponseHeaders({ status: '200 OK', headers: 'Content-Length: 0\r\n\r\n', keepConn: true });
      ecb.writeClientAsync(Buffer.alloc(0), () => ecb.doneWithSession(HSE_STATUS_SUCCESS));
      return HSE_STATUS_PENDING;
    }),
  );
  const results = await Promise.all(runs);
  expect(results.every((r) => r.doneCount === 1)).toBe(true);
  await new Promise((r) => setImmediate(r));
  expect(host.inFlight).toBe(0);
  expect(host.allocatedBlocks).toBe(0);
  host.close();
  expect(releaseIoCompletion()).toBe(true);
  expect(koffi.stats().callbacks).toBe(before);
});

test('a session that never calls DONE is reported as timed out, not left hanging', async () => {
  const host = new EmulatedHost({ doneTimeoutMs: 30 });
  const r = await host.execute({ url: '/' }, () => HSE_STATUS_PENDING);
  expect(r.timedOut).toBe(true);
  expect(r.doneCount).toBe(0);
  host.close();
});

test('close() refuses while a session is still open, and a closed host refuses work', async () => {
  const host = new EmulatedHost({ doneTimeoutMs: 50 });
  let ecb: NativeEcb | null = null;
  const pending = host.execute({ url: '/' }, (p) => {
    ecb = new NativeEcb(p);
    return HSE_STATUS_PENDING;
  });
  await new Promise((r) => setImmediate(r));
  expect(() => host.close()).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  ecb!.doneWithSession();
  await pending;
  host.close();
  await expect(host.execute({ url: '/' }, () => 1)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
});

test('a synchronous HttpExtensionProc result ends the session without DONE, and the fields it left are read', async () => {
  const host = new EmulatedHost();
  const r = await host.execute({ url: '/' }, (p) => {
    const ecb = new NativeEcb(p);
    ecb.sendResponseHeaders({ status: '204 No Content', headers: '\r\n', keepConn: true });
    ecb.httpStatusCode = 204;
    ecb.logData = 'sync';
    return HSE_STATUS_SUCCESS;
  });
  expect(r).toMatchObject({ procResult: HSE_STATUS_SUCCESS, doneCount: 0, httpStatusCode: 204, logData: 'sync', status: '204 No Content' });
  host.close();
});
