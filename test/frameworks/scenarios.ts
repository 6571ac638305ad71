/**
 * The framework matrix: ONE scenario suite, run for every framework version through inject() twice — on MockEcb and on
 * EmulatedHost (real native ECB memory, NativeEcb, koffi callbacks). Each framework file only builds an app that
 * implements the routes listed in kit.ts, with the framework's own routing, body parsing, static files and error
 * handling, and says which optional static features its middleware has (Caps).
 *
 * Every response also proves the ISAPI contract held: exactly one DONE_WITH_SESSION.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createExtension, ErrorCodes, HSE_STATUS_ERROR, HSE_STATUS_PENDING, SimpleHandler, type AppLike, type IsapiExtension } from 'isapi-http';
import {
  EmulatedHost,
  inject,
  MockEcb,
  type InjectOptions,
  type InjectRequest,
  type InjectResponse,
  type MockEcbOptions,
  type RecordedResponse,
  type RequestDescription,
} from 'isapi-http/testing';
import { AbortProbe, ABORT_CHUNKS, BIG, BIG_SHA, multipartBody, PUBLIC_DIR, sha256, SSE_TICKS, STATIC_CONTENT, STATIC_NAME, UPLOAD_FILE, UPLOAD_SHA, type Kit } from './kit.js';

export interface Caps {
  /** Validators the static middleware answers 304 for. Default both. */
  readonly conditional?: readonly ('etag' | 'last-modified')[];
  /** The static middleware honours Range. Default true. */
  readonly range?: boolean;
}

export interface Harness {
  readonly native: boolean;
  readonly kit: Kit;
  readonly app: AppLike;
  /** Errors that reached the library's own onError (not the framework's handler). */
  readonly libraryErrors: unknown[];
  /** inject() with the mode's options; asserts exactly one DONE_WITH_SESSION. */
  call(request: InjectRequest | string, options?: InjectOptions): Promise<InjectResponse>;
}

export interface FrameworkSpec {
  readonly name: string;
  build(kit: Kit): AppLike | Promise<AppLike>;
  readonly caps?: Caps;
  /** Framework-specific tests (quirks), run in both modes with the same app. */
  readonly extra?: (harness: () => Harness) => void;
}

const MODES = [
  ['MockEcb', false],
  ['EmulatedHost', true],
] as const;

const staticUrl = `/static/${STATIC_NAME}`;

export function frameworkMatrix(spec: FrameworkSpec): void {
  const caps = { conditional: ['etag', 'last-modified'] as const, range: true, ...spec.caps };

  describe(spec.name, () => {
    describe.each(MODES)('through %s', (_label, native) => {
      const closers: (() => unknown)[] = [];
      const probe = new AbortProbe();
      const kit: Kit = { publicDir: PUBLIC_DIR, probe, onClose: (fn) => void closers.push(fn) };
      const libraryErrors: unknown[] = [];
      const onError = (error: unknown): void => void libraryErrors.push(error);
      let app: AppLike;

      async function call(request: InjectRequest | string, options: InjectOptions = {}): Promise<InjectResponse> {
        const res = await inject(app, request, { native, onError, ...options });
        expect(res.record.doneCount).toBe(1);
        return res;
      }
      /** The host's record of one request, for when inject() has no response to return (it then rejects). */
      let direct: IsapiExtension | null = null;
      async function record(request: RequestDescription, host: MockEcbOptions = {}): Promise<RecordedResponse> {
        direct ??= createExtension(new SimpleHandler(app, { onError }));
        if (native) {
          const emulated = new EmulatedHost(host);
          try {
            return await emulated.execute(request, direct.nativeEntryPoints().HttpExtensionProc);
          } finally {
            emulated.close();
          }
        }
        const ecb = await MockEcb.from(request, host);
        const status = direct.dispatch(ecb);
        if (status === HSE_STATUS_PENDING) await ecb.whenDone();
        return ecb.record;
      }

      const harness: Harness = {
        native,
        kit,
        get app() {
          return app;
        },
        libraryErrors,
        call,
      };

      beforeAll(async () => {
        app = await spec.build(kit);
      });
      afterAll(async () => {
        direct?.dispose();
        for (const close of closers.reverse()) await close();
      });

      test('routing, params and query', async () => {
        const res = await call('/users/42?q=hello%20world&x=1');
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({ id: '42', q: 'hello world' });
      });

      test('a JSON body', async () => {
        const sent = { hello: 'wörld', list: [1, 2, 3], nested: { ok: true } };
        const res = await call({ method: 'POST', url: '/json', body: sent });
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({ got: sent });
      });

      test('a urlencoded form', async () => {
        const res = await call({
          method: 'POST',
          url: '/form',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
          body: 'a=1&b=two+words&c=%C3%A9t%C3%A9',
        });
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({ got: { a: '1', b: 'two words', c: 'été' } });
      });

      test('a multipart upload of more than 5 MB', async () => {
        const { contentType, body } = multipartBody();
        expect(UPLOAD_FILE.length).toBeGreaterThan(5 * 1024 * 1024);
        const res = await call({ method: 'POST', url: '/upload', headers: { 'Content-Type': contentType }, body });
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({
          fields: { note: 'hello upload' },
          files: [{ field: 'file', filename: 'big.bin', size: UPLOAD_FILE.length, sha256: UPLOAD_SHA }],
        });
      });

      test('several Set-Cookie headers, each on its own header line', async () => {
        const res = await call('/cookies');
        expect(res.statusCode).toBe(200);
        const cookies = res.headers['set-cookie'] ?? [];
        expect(cookies.map((c) => c.split(';')[0])).toEqual(['a=1', 'b=2']);
        const lines = res.rawHeaders.filter((_v, i) => i % 2 === 0 && res.rawHeaders[i]?.toLowerCase() === 'set-cookie');
        expect(lines).toHaveLength(2);
      });

      test('a redirect', async () => {
        const res = await call('/redirect');
        expect(res.statusCode).toBe(302);
        expect(res.headers.location).toBe('/target');
      });

      describe('static files through the framework middleware', () => {
        test('GET', async () => {
          const res = await call(staticUrl);
          expect(res.statusCode).toBe(200);
          expect(res.headers['content-type']).toMatch(/^text\/plain/);
          expect(res.body.equals(STATIC_CONTENT)).toBe(true);
        });

        test(caps.range ? 'Range: 206 with Content-Range' : 'Range: ignored by this middleware (200, whole file)', async () => {
          const res = await call({ url: staticUrl, headers: { Range: 'bytes=5-24' } });
          if (caps.range) {
            expect(res.statusCode).toBe(206);
            expect(res.headers['content-range']).toBe(`bytes 5-24/${STATIC_CONTENT.length}`);
            expect(res.body.equals(STATIC_CONTENT.subarray(5, 25))).toBe(true);
          } else {
            expect(res.statusCode).toBe(200);
            expect(res.headers['content-range']).toBeUndefined();
            expect(res.body.equals(STATIC_CONTENT)).toBe(true);
          }
        });

        test.each(['etag', 'last-modified'] as const)('conditional GET with the %s validator', async (validator) => {
          const first = await call(staticUrl);
          const supported = caps.conditional.includes(validator);
          const value = first.headers[validator] ?? (validator === 'etag' ? '"none"' : new Date(Date.now() + 60_000).toUTCString());
          if (supported) expect(typeof first.headers[validator]).toBe('string');
          const header = validator === 'etag' ? { 'If-None-Match': value as string } : { 'If-Modified-Since': value as string };
          const res = await call({ url: staticUrl, headers: header });
          if (supported) {
            expect(res.statusCode).toBe(304);
            expect(res.body).toHaveLength(0);
          } else {
            // Documented per framework in its Caps: this middleware does not answer 304 for this validator.
            expect(res.statusCode).toBe(200);
            expect(res.body.equals(STATIC_CONTENT)).toBe(true);
          }
        });

        test('HEAD', async () => {
          const res = await call({ method: 'HEAD', url: staticUrl });
          expect(res.statusCode).toBe(200);
          expect(res.headers['content-length']).toBe(String(STATIC_CONTENT.length));
          expect(res.body).toHaveLength(0);
        });
      });

      test('server-sent events: streamed, flushed, not Content-Length framed', async () => {
        const res = await call('/sse');
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
        expect(res.headers['content-length']).toBeUndefined();
        expect(res.record.flushFlag).toBe(true);
        const data = [...res.text().matchAll(/^data: (.*)$/gm)].map((m) => m[1]);
        expect(data).toEqual(Array.from({ length: SSE_TICKS }, (_v, i) => `tick ${i + 1}`));
      });

      if (!native) {
        test('server-sent events reach the host one by one, while the stream is still open', async () => {
          // inject() only returns at the end, so watch a MockEcb's record while the app is still writing.
          direct ??= createExtension(new SimpleHandler(app, { onError }));
          const ecb = await MockEcb.from({ url: '/sse' });
          direct.dispatch(ecb);
          const seen = new Set<number>();
          const until = Date.now() + 10_000;
          while (ecb.record.doneCount === 0 && Date.now() < until) {
            seen.add(ecb.record.body.toString('latin1').match(/data: tick/g)?.length ?? 0);
            await sleep(1);
          }
          expect(ecb.record.doneCount).toBe(1);
          expect([...seen].some((n) => n > 0 && n < SSE_TICKS)).toBe(true);
        });
      }

      test('an error handler answering 500', async () => {
        const res = await call('/boom');
        expect(res.statusCode).toBe(500);
        expect(res.json()).toEqual({ error: 'boom' });
      });

      test('a 404', async () => {
        const res = await call('/no/such/route');
        expect(res.statusCode).toBe(404);
      });

      test('a 20 MB response', async () => {
        const res = await call('/big');
        expect(res.statusCode).toBe(200);
        expect(res.body.length).toBe(BIG.length);
        expect(sha256(res.body)).toBe(BIG_SHA);
      });

      test('an async handler', async () => {
        const res = await call('/async');
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({ async: true });
      });

      test("a client abort mid-response: the app sees 'close' without 'finish', and the next request works", async () => {
        probe.reset();
        // The head went out before the writes failed, so inject resolves; the record tells how the session ended.
        const res = await call('/abort', { host: { failWritesAfterBytes: 256 * 1024 } });
        expect(res.statusCode).toBe(200);
        expect(res.record.closedConnection).toBe(true);
        expect(res.record.doneStatus).toBe(HSE_STATUS_ERROR);
        expect(res.record.body.length).toBeLessThanOrEqual(256 * 1024);
        await probe.closed();
        expect(probe.events).toContain('close');
        expect(probe.events).not.toContain('finish');
        expect(probe.chunksRead).toBeLessThan(ABORT_CHUNKS);
        const next = await call('/async');
        expect(next.json()).toEqual({ async: true });
      });

      test('a client abort mid-upload: no answer, one DONE with an error, and the next request works', async () => {
        const { contentType, body } = multipartBody();
        const request = { method: 'POST', url: '/upload', headers: { 'Content-Type': contentType }, body, abortAfterBytes: 1024 * 1024 };
        // The client left before the app could answer: inject has no response to return, and says so.
        await expect(inject(app, request, { native, onError })).rejects.toMatchObject({ code: ErrorCodes.INVALID_REQUEST });
        const rec = await record(request);
        expect(rec.status).toBeNull();
        expect(rec.doneCount).toBe(1);
        expect(rec.closedConnection).toBe(true);
        expect(rec.doneStatus).toBe(HSE_STATUS_ERROR);
        const next = await call('/async');
        expect(next.json()).toEqual({ async: true });
      });

      test('req.ip and the protocol come from REMOTE_ADDR and HTTPS, with no trust proxy', async () => {
        const spoof = { 'X-Forwarded-For': '198.51.100.1', 'X-Forwarded-Proto': 'http' };
        const secure = await call({ url: '/whoami', headers: spoof, serverVariables: { REMOTE_ADDR: '203.0.113.7', HTTPS: 'on' } });
        expect(secure.json()).toEqual({ ip: '203.0.113.7', protocol: 'https' });
        const plain = await call({ url: '/whoami', headers: { 'X-Forwarded-Proto': 'https' }, serverVariables: { REMOTE_ADDR: '2001:db8::5', HTTPS: 'off' } });
        expect(plain.json()).toEqual({ ip: '2001:db8::5', protocol: 'http' });
      });

      spec.extra?.(() => harness);
    });
  });
}
