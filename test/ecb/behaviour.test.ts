/**
 * One table of ECB behaviours, run against all three forms: MockEcb, EmulatedHost + NativeEcb, and the C reference
 * host (its own pthreads) + NativeEcb. Each row asserts what an extension would observe.
 */
import type { Ecb } from '../../src/ecb/ecb.js';
import {
  ERROR_INVALID_INDEX,
  ERROR_NO_DATA,
  HSE_STATUS_PENDING,
  HSE_STATUS_SUCCESS,
  HSE_STATUS_SUCCESS_AND_KEEP_CONN,
} from '../../src/ecb/constants.js';
import { ErrorCodes, IsapiError } from '../../src/errors.js';
import { UNKNOWN_LENGTH } from '../../src/ecb/request-model.js';
import { getKoffi } from '../../src/ecb/koffi.js';
import { releaseIoCompletion } from '../../src/ecb/io-completion.js';
import { ALL_FORMS, type EcbForm } from '../support/ecb-forms.js';

/** Read the whole body the way the library will: lpbData first, then async reads until done. */
function readBody(ecb: Ecb, chunkSize: number, done: (body: Buffer, reads: number) => void): void {
  const parts: Buffer[] = [ecb.readAhead()];
  let got = parts[0]!.length;
  let reads = 0;
  const total = ecb.totalBytes;
  const next = (): void => {
    if (total !== UNKNOWN_LENGTH && got >= total) return done(Buffer.concat(parts), reads);
    const buf = Buffer.alloc(chunkSize);
    ecb.readClientAsync(buf, (err, n) => {
      if (err) throw err;
      reads++;
      if (n === 0) return done(Buffer.concat(parts), reads);
      parts.push(buf.subarray(0, n));
      got += n;
      next();
    });
  };
  next();
}

/** Finish a request with a small text body, synchronously. */
function finish(ecb: Ecb, text: string, status = HSE_STATUS_SUCCESS_AND_KEEP_CONN): void {
  const body = Buffer.from(text);
  ecb.sendResponseHeaders({ status: '200 OK', headers: `Content-Length: ${body.length}\r\n\r\n`, keepConn: true });
  ecb.writeClient(body);
  ecb.doneWithSession(status);
}

function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

async function* chunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) {
    await new Promise((r) => setImmediate(r));
    yield data.subarray(i, i + size);
  }
}

const callbacksAtStart = getKoffi().stats().callbacks;

describe.each(ALL_FORMS)('ECB behaviour on %s', (_name, make) => {
  let form: EcbForm;
  beforeAll(() => {
    form = make();
  });
  afterAll(() => form.close());

  test('GetServerVariable retries at the size the host asks for (a value larger than any first buffer)', async () => {
    const cookie = 'c=' + 'x'.repeat(20000);
    let value: string | null = null;
    const r = await form.run({ url: '/', headers: { Cookie: cookie } }, (ecb) => {
      value = ecb.getServerVariableString('HTTP_COOKIE');
      finish(ecb, 'ok');
      return HSE_STATUS_PENDING;
    });
    expect(value).toBe(cookie);
    expect(r.violations).toEqual([]);
  });

  test('ALL_RAW keeps wire order, case and duplicates', async () => {
    let raw: string | null = null;
    await form.run({ headers: [['X-B', '2'], ['x-a', '1'], ['Set-Thing', 'one'], ['Set-Thing', 'two']] }, (ecb) => {
      raw = ecb.getServerVariableString('ALL_RAW');
      finish(ecb, 'ok');
      return HSE_STATUS_PENDING;
    });
    expect(raw).toBe('Host: localhost\r\nX-B: 2\r\nx-a: 1\r\nSet-Thing: one\r\nSet-Thing: two\r\n');
  });

  test('an unknown variable is null with ERROR_INVALID_INDEX; a variable without data gives ERROR_NO_DATA', async () => {
    const seen: unknown[] = [];
    await form.run({ serverVariables: { AUTH_PASSWORD: null } }, (ecb) => {
      seen.push(ecb.serverVariable('NO_SUCH_VARIABLE'), ecb.getServerVariable('NO_SUCH_VARIABLE'), ecb.serverVariable('AUTH_PASSWORD'));
      seen.push(ecb.serverVariable('UNICODE_HTTP_HOST')); // UNICODE_ never applies to headers (ISAPI.md §6)
      finish(ecb, 'ok');
      return HSE_STATUS_PENDING;
    });
    expect(seen).toEqual([
      { ok: false, error: ERROR_INVALID_INDEX },
      null,
      { ok: false, error: ERROR_NO_DATA },
      { ok: false, error: ERROR_INVALID_INDEX },
    ]);
  });

  test('UNICODE_URL carries non-ASCII paths as UTF-16LE; the ANSI URL cannot', async () => {
    const got: Record<string, unknown> = {};
    await form.run({ url: '/caf%C3%A9/%E6%97%A5%E6%9C%AC/%F0%9F%98%80?q=%C3%A9' }, (ecb) => {
      got.unicode = ecb.getServerVariableString('UNICODE_URL');
      got.unicodeBytes = ecb.getServerVariable('UNICODE_URL')?.length;
      got.ansi = ecb.getServerVariableString('URL');
      got.raw = ecb.getServerVariableString('UNENCODED_URL');
      got.query = ecb.queryString;
      finish(ecb, 'ok');
      return HSE_STATUS_PENDING;
    });
    expect(got.unicode).toBe('/café/日本/😀');
    // 11 UTF-16 code units, 2 bytes each, without the 2-byte terminator.
    expect(got.unicodeBytes).toBe(Buffer.byteLength('/café/日本/😀', 'utf16le'));
    expect(got.ansi).toBe('/caf\u00e9/??/??');
    expect(got.raw).toBe('/caf%C3%A9/%E6%97%A5%E6%9C%AC/%F0%9F%98%80?q=%C3%A9');
    expect(got.query).toBe('q=%C3%A9');
  });

  test.each([
    ['0 bytes', 0],
    ['48 KiB', 49152],
    ['48 KiB + 1', 49153],
    ['10 MiB', 10 * 1024 * 1024],
  ])('a body of %s arrives whole: read-ahead in lpbData, the rest by async ReadClient', async (_label, size) => {
    const body = pattern(size);
    let fields: number[] = [];
    let received: Buffer | null = null;
    const r = await form.run({ method: 'POST', url: '/upload', body }, (ecb) => {
      fields = [ecb.totalBytes, ecb.availableBytes];
      readBody(ecb, 65536, (all) => {
        received = all;
        finish(ecb, String(all.length));
      });
      return HSE_STATUS_PENDING;
    });
    expect(fields).toEqual([size, Math.min(size, 49152)]);
    expect(received!.length).toBe(size);
    expect(received!.equals(body)).toBe(true);
    expect(r.body.toString()).toBe(String(size));
    expect(r.violations).toEqual([]);
  });

  test('a body of unknown length: cbTotalBytes is 0xFFFFFFFF and reads run until 0 bytes', async () => {
    const body = pattern(200_000);
    let total = 0;
    let received: Buffer | null = null;
    const r = await form.run({ method: 'PUT', body: chunks(body, 30_000), unknownLength: true }, (ecb) => {
      total = ecb.totalBytes;
      readBody(ecb, 16384, (all) => {
        received = all;
        finish(ecb, 'ok');
      });
      return HSE_STATUS_PENDING;
    });
    expect(total).toBe(UNKNOWN_LENGTH);
    expect(received!.equals(body)).toBe(true);
    expect(r.violations).toEqual([]);
  });

  test('async completions arrive later, one at a time, in issue order', async () => {
    const events: string[] = [];
    const r = await form.run({}, (ecb) => {
      ecb.sendResponseHeaders({ status: '200 OK', headers: 'Content-Length: 5\r\n\r\n', keepConn: true });
      const write = (i: number): void => {
        const data = Buffer.from(String(i));
        let returned = false;
        ecb.writeClientAsync(data, (err, n) => {
          events.push(`complete ${i} (${n}) ${returned ? 'after' : 'DURING'} the call`);
          expect(err).toBeNull();
          if (i < 4) write(i + 1);
          else ecb.doneWithSession(HSE_STATUS_SUCCESS);
        });
        returned = true;
        events.push(`issued ${i}`);
        // A second async operation while one is outstanding is refused (ISAPI.md §7.3).
        if (i === 0) {
          expect(() => ecb.writeClientAsync(Buffer.from('!'), () => undefined)).toThrow(
            expect.objectContaining({ code: ErrorCodes.ASYNC_PENDING }),
          );
        }
      };
      write(0);
      return HSE_STATUS_PENDING;
    });
    expect(events).toEqual([0, 1, 2, 3, 4].flatMap((i) => [`issued ${i}`, `complete ${i} (1) after the call`]));
    expect(r.body.toString()).toBe('01234');
  });

  test('after DONE_WITH_SESSION the ECB refuses every call, and DONE twice is an error', async () => {
    const thrown: string[] = [];
    const r = await form.run({ method: 'POST', body: 'abc' }, (ecb) => {
      finish(ecb, 'done', HSE_STATUS_SUCCESS);
      const attempts: [string, () => unknown][] = [
        ['GetServerVariable', () => ecb.getServerVariable('URL')],
        ['WriteClient', () => ecb.writeClient(Buffer.from('late'))],
        ['ReadClient', () => ecb.readClient(Buffer.alloc(4))],
        ['headers', () => ecb.sendResponseHeaders({ status: '500 Oops', headers: '\r\n', keepConn: false })],
        ['status', () => (ecb.httpStatusCode = 500)],
        ['query', () => ecb.queryString],
        ['close', () => ecb.closeConnection()],
        ['done', () => ecb.doneWithSession()],
      ];
      for (const [name, attempt] of attempts) {
        try {
          attempt();
          thrown.push(`${name}: no error`);
        } catch (e) {
          thrown.push(`${name}: ${(e as IsapiError).code}`);
        }
      }
      return HSE_STATUS_PENDING;
    });
    expect(thrown).toEqual([
      `GetServerVariable: ${ErrorCodes.ECB_DONE}`,
      `WriteClient: ${ErrorCodes.ECB_DONE}`,
      `ReadClient: ${ErrorCodes.ECB_DONE}`,
      `headers: ${ErrorCodes.ECB_DONE}`,
      `status: ${ErrorCodes.ECB_DONE}`,
      `query: ${ErrorCodes.ECB_DONE}`,
      `close: ${ErrorCodes.ECB_DONE}`,
      `done: ${ErrorCodes.DONE_TWICE}`,
    ]);
    // The host saw exactly one DONE and nothing written after it.
    expect(r.doneCount).toBe(1);
    expect(r.body.toString()).toBe('done');
    expect(r.status).toBe('200 OK');
  });

  test('headers may be sent once; status code, log data and keep-conn reach the host', async () => {
    let second: unknown = null;
    const r = await form.run({}, (ecb) => {
      ecb.sendResponseHeaders({ status: '201 Created', headers: 'Content-Length: 0\r\n\r\n', keepConn: false });
      try {
        ecb.sendResponseHeaders({ status: '200 OK', headers: '\r\n', keepConn: true });
      } catch (e) {
        second = (e as IsapiError).code;
      }
      ecb.httpStatusCode = 201;
      ecb.logData = 'é'.repeat(60); // 120 bytes of UTF-8: truncated to 79 bytes, on a character boundary
      ecb.doneWithSession(HSE_STATUS_SUCCESS);
      return HSE_STATUS_PENDING;
    });
    expect(second).toBe(ErrorCodes.HEADERS_SENT);
    expect(r.status).toBe('201 Created');
    expect(r.headerBlock).toBe('Content-Length: 0\r\n\r\n');
    expect(r.keepConn).toBe(false);
    expect(r.httpStatusCode).toBe(201);
    expect(r.logData).toBe('é'.repeat(39));
    expect(r.doneStatus).toBe(HSE_STATUS_SUCCESS);
  });

  test('a client that disconnects mid-upload makes the read yield 0 bytes early', async () => {
    const body = pattern(100_000);
    let received: Buffer | null = null;
    let connected: boolean | null = null;
    await form.run({ method: 'POST', body, abortAfterBytes: 60_000 }, (ecb) => {
      readBody(ecb, 8192, (all) => {
        received = all;
        connected = ecb.isConnected();
        finish(ecb, 'bye', HSE_STATUS_SUCCESS);
      });
      return HSE_STATUS_PENDING;
    });
    expect(received!.length).toBe(60_000);
    expect(received!.equals(body.subarray(0, 60_000))).toBe(true);
    expect(connected).toBe(false);
  });

  test('the ServerSupportFunction helpers answer as the host says', async () => {
    const got: Record<string, unknown> = {};
    const r = await form.run({ headers: { Connection: 'close' } }, (ecb) => {
      got.keep = ecb.isKeepConn();
      got.connected = ecb.isConnected();
      ecb.setFlushFlag(true);
      ecb.reportUnhealthy('test reason');
      ecb.appendLogParameter('user=ann');
      finish(ecb, 'ok');
      return HSE_STATUS_PENDING;
    });
    expect(got).toEqual({ keep: false, connected: true });
    expect(r.flushFlag).toBe(true);
    expect(r.unhealthy).toEqual(['test reason']);
    expect(r.logParameters).toEqual(['user=ann']);
  });
});

test('no koffi callback slot is left registered', () => {
  expect(releaseIoCompletion()).toBe(true);
  expect(getKoffi().stats().callbacks).toBe(callbacksAtStart);
});
