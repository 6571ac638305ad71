/**
 * createExtension and SimpleHandler through the three ISAPI entry points: over raw addresses, through the native
 * function pointers a loader would call, and from the C reference host's own pthreads.
 */
import { HSE_STATUS_ERROR, HSE_STATUS_PENDING, HSE_TERM_MUST_UNLOAD, HSE_VERSION } from '../../src/ecb/constants.js';
import { getKoffi } from '../../src/ecb/koffi.js';
import { getAbi } from '../../src/ecb/abi.js';
import { releaseIoCompletion } from '../../src/ecb/io-completion.js';
import { MockEcb } from '../../src/ecb/mock-ecb.js';
import { RequestModel } from '../../src/ecb/request-model.js';
import { createExtension, DEFAULT_DESCRIPTION } from '../../src/handlers/create-extension.js';
import { SimpleHandler } from '../../src/handlers/simple-handler.js';
import { ErrorCodes } from '../../src/errors.js';
import { EmulatedHost } from '../../src/host/emulated-host.js';
import { CHost } from '../native/c-host.js';

const koffi = getKoffi();
const callbacksAtStart = koffi.stats().callbacks;

function readVersionInfo(p: bigint): { version: number; description: string } {
  const abi = getAbi();
  const view = Buffer.from(koffi.view(p as never, abi.sizes.HSE_VERSION_INFO) as ArrayBuffer);
  const off = abi.offsets.HSE_VERSION_INFO;
  const desc = view.subarray(off.lpszExtensionDesc, off.lpszExtensionDesc + 256);
  return { version: view.readUInt32LE(off.dwExtensionVersion), description: desc.toString('latin1', 0, desc.indexOf(0)) };
}

describe('GetExtensionVersion', () => {
  test('fills HSE_VERSION_INFO with version 8.0 and an ASCII description, directly and through its native pointer', () => {
    const ext = createExtension(new SimpleHandler((_req, res) => res.end()), { description: 'Payroll — intranet' });
    const p = koffi.alloc('uint8_t', 260) as unknown as bigint;
    try {
      expect(ext.GetExtensionVersion(p)).toBe(true);
      expect(readVersionInfo(p)).toEqual({ version: HSE_VERSION, description: 'Payroll ? intranet' });
      expect(HSE_VERSION).toBe(0x80000);
      Buffer.from(koffi.view(p as never, 260) as ArrayBuffer).fill(0xff);
      const native = koffi.decode(ext.nativeEntryPoints().GetExtensionVersion as never, getAbi().protos.GetExtensionVersion) as unknown as (p: bigint) => number;
      expect(native(p)).toBe(1);
      expect(readVersionInfo(p).description).toBe('Payroll ? intranet');
    } finally {
      koffi.free(p as never);
      ext.dispose();
    }
  });

  test('the default description, and a long one cut to 255 characters', () => {
    const p = koffi.alloc('uint8_t', 260) as unknown as bigint;
    const a = createExtension(new SimpleHandler((_req, res) => res.end()));
    const b = createExtension(new SimpleHandler((_req, res) => res.end()), { description: 'x'.repeat(400) });
    try {
      a.GetExtensionVersion(p);
      expect(readVersionInfo(p).description).toBe(DEFAULT_DESCRIPTION);
      b.GetExtensionVersion(p);
      expect(readVersionInfo(p).description).toBe('x'.repeat(255));
    } finally {
      koffi.free(p as never);
    }
  });

  test('a NULL HSE_VERSION_INFO is refused with FALSE, not a crash', () => {
    const errors: unknown[] = [];
    const ext = createExtension(new SimpleHandler((_req, res) => res.end()), { onError: (e) => errors.push(e) });
    expect(ext.GetExtensionVersion(0n)).toBe(false);
    expect(errors).toHaveLength(1);
  });
});

describe('createExtension arguments', () => {
  test('a value that is no handler gets a coded error naming what was expected', () => {
    expect(() => createExtension({} as never)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining('SimpleHandler') }));
  });
  test('SimpleHandler refuses a value that is no app, naming the kinds it accepts', () => {
    expect(() => new SimpleHandler(42 as never)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining('Express/Connect/Koa') }));
  });
});

describe('HttpExtensionProc', () => {
  test('returns HSE_STATUS_PENDING and ends the session once, through the native pointer on EmulatedHost', async () => {
    const ext = createExtension(new SimpleHandler((req, res) => res.end(`${req.method} ${req.url}`)));
    const host = new EmulatedHost();
    try {
      const r = await host.execute({ url: '/a?b=1' }, ext.nativeEntryPoints().HttpExtensionProc);
      expect(r.procResult).toBe(HSE_STATUS_PENDING);
      expect(r.body.toString()).toBe('GET /a?b=1');
      expect(r.doneCount).toBe(1);
      expect(r.violations).toEqual([]);
    } finally {
      host.close();
      ext.dispose();
    }
  });

  test('a NULL ECB is answered with HSE_STATUS_ERROR, never a throw into koffi', () => {
    const ext = createExtension(new SimpleHandler((_req, res) => res.end()), { onError: () => undefined });
    expect(ext.HttpExtensionProc(0n)).toBe(HSE_STATUS_ERROR);
  });

  test('many requests in flight at once on the main thread: 1,000 requests from 8 pthreads of the C host, byte-exact', async () => {
    const ext = createExtension(
      new SimpleHandler((req, res) => {
        const parts: Buffer[] = [];
        req.on('data', (c: Buffer) => parts.push(c));
        req.on('end', () => setImmediate(() => res.end(Buffer.concat(parts))));
      }),
    );
    const host = new CHost();
    try {
      const bodies = Array.from({ length: 1000 }, (_, i) => Buffer.alloc(100 + (i % 7) * 20_000, i & 0xff));
      const models = bodies.map((body, i) => new RequestModel({ method: 'POST', url: `/r/${i}`, body }));
      const results = await host.executeMany(models, ext.nativeEntryPoints().HttpExtensionProc, { threads: 8 });
      let exact = 0;
      results.forEach((r, i) => {
        if (r.body.equals(bodies[i] as Buffer) && r.doneCount === 1 && r.procResult === HSE_STATUS_PENDING) exact++;
      });
      expect(exact).toBe(1000);
      expect(results.every((r) => Object.values(r.violations).every((n) => n === 0))).toBe(true);
    } finally {
      await host.close();
      ext.dispose();
    }
  });
});

describe('TerminateExtension', () => {
  test('stops accepting (new requests get 503), lets the request in flight finish, and resolves when drained', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const ext = createExtension(
      new SimpleHandler(async (_req, res) => {
        await gate;
        res.end('finished normally');
      }),
    );
    const first = await MockEcb.from({ url: '/slow' });
    expect(ext.dispatch(first)).toBe(HSE_STATUS_PENDING);
    expect(ext.TerminateExtension(HSE_TERM_MUST_UNLOAD)).toBe(true);
    let drained = false;
    void ext.terminated.then(() => (drained = true));

    const late = await MockEcb.from({ url: '/late' });
    ext.dispatch(late);
    const refused = await late.whenDone();
    expect(refused.status).toBe('503 Service Unavailable');
    expect(refused.headerBlock).toContain('Retry-After: 1\r\n');
    expect(refused.doneCount).toBe(1);
    expect(drained).toBe(false);

    release();
    const done = await first.whenDone();
    expect(done.body.toString()).toBe('finished normally');
    await ext.terminated;
    expect(drained).toBe(true);
    expect(ext.handler.inFlight).toBe(0);
  });
});

// After every test above: nothing registered with koffi is left behind (entry points, completion routine).
afterAll(() => {
  expect(releaseIoCompletion()).toBe(true);
  expect(koffi.stats().callbacks).toBe(callbacksAtStart);
});
