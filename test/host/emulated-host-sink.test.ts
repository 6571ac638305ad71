/**
 * EmulatedHost's streaming mode: with a sink, the head and every WriteClient go to the sink as they happen, an async
 * WriteClient completes only when the sink says so (backpressure), and a streamed body is pulled on demand.
 */
import { HSE_STATUS_PENDING, HSE_STATUS_SUCCESS, HSE_TERM_MUST_UNLOAD } from '../../src/ecb/constants.js';
import { NativeEcb } from '../../src/ecb/native-ecb.js';
import { EmulatedHost, type SessionSink } from '../../src/host/emulated-host.js';

async function until(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !predicate(); i++) await new Promise((r) => setTimeout(r, 5));
}

function recordingSink(): SessionSink & { events: string[]; dones: ((e?: number) => void)[] } {
  const events: string[] = [];
  const dones: ((e?: number) => void)[] = [];
  return {
    events,
    dones,
    onHeaders: (status, block, keep) => void events.push(`headers ${status} keep=${keep} ${JSON.stringify(block)}`),
    onWrite: (bytes, done) => {
      events.push(`write ${bytes.toString()}`);
      dones.push(done);
    },
    onCloseConnection: () => void events.push('close'),
    isConnected: () => false,
    isKeepConn: () => false,
  };
}

test('the async WriteClient completes when the sink calls done, not before', async () => {
  const host = new EmulatedHost();
  const sink = recordingSink();
  const completions: string[] = [];
  let ecb!: NativeEcb;
  const run = host.execute(
    { url: '/' },
    (p) => {
      ecb = new NativeEcb(p);
      expect(ecb.isKeepConn()).toBe(false);
      expect(ecb.isConnected()).toBe(false);
      ecb.sendResponseHeaders({ status: '200 OK', headers: 'Content-Length: 2\r\n\r\n', keepConn: true });
      ecb.writeClientAsync(Buffer.from('hi'), (error, n) => {
        completions.push(`${error ? 'error' : 'ok'} ${n}`);
        ecb.doneWithSession(HSE_STATUS_SUCCESS);
      });
      return HSE_STATUS_PENDING;
    },
    { sink, doneTimeoutMs: 0 },
  );
  await until(() => sink.events.length === 2);
  await new Promise((r) => setTimeout(r, 20));
  expect(sink.events).toEqual(['headers 200 OK keep=true "Content-Length: 2\\r\\n\\r\\n"', 'write hi']);
  expect(completions).toEqual([]);
  sink.dones[0]!();
  const result = await run;
  expect(completions).toEqual(['ok 2']);
  expect(result.body.length).toBe(0);
  expect(result).toMatchObject({ status: '200 OK', doneCount: 1, violations: [] });
  host.close();
});

test('a sink error fails the write with cbIO 0 and the Win32 error', async () => {
  const host = new EmulatedHost();
  const sink = recordingSink();
  let completion = '';
  const run = host.execute(
    { url: '/' },
    (p) => {
      const ecb = new NativeEcb(p);
      ecb.sendResponseHeaders({ status: '200 OK', headers: '\r\n', keepConn: false });
      ecb.writeClientAsync(Buffer.from('x'), (error, n) => {
        completion = `${error?.win32Error} ${n}`;
        ecb.closeConnection();
        ecb.doneWithSession(4);
      });
      return HSE_STATUS_PENDING;
    },
    { sink },
  );
  await until(() => sink.dones.length === 1);
  sink.dones[0]!(64);
  const result = await run;
  expect(completion).toBe('64 0');
  expect(sink.events).toContain('close');
  expect(result.closedConnection).toBe(true);
  host.close();
});

test('a streamed body is pulled only as the extension reads', async () => {
  const host = new EmulatedHost();
  let pulled = 0;
  async function* body(): AsyncGenerator<Buffer> {
    for (let i = 0; i < 4; i++) {
      pulled++;
      yield Buffer.alloc(1000, 0x61 + i);
    }
  }
  const reads: number[] = [];
  const result = await host.execute(
    { method: 'POST', url: '/', headers: { 'Content-Length': '4000' }, body: body(), readAhead: 1000 },
    (p) => {
      const ecb = new NativeEcb(p);
      expect(ecb.availableBytes).toBe(1000);
      expect(pulled).toBe(1);
      const next = (): void =>
        ecb.readClientAsync(Buffer.alloc(1000), (error, n) => {
          reads.push(n);
          if (n > 0 && !error) return next();
          ecb.sendResponseHeaders({ status: '204 No Content', headers: '\r\n', keepConn: true });
          ecb.doneWithSession(HSE_STATUS_SUCCESS);
        });
      next();
      return HSE_STATUS_PENDING;
    },
    { sink: recordingSink() },
  );
  expect(reads).toEqual([1000, 1000, 1000, 0]);
  expect(pulled).toBe(4);
  expect(result.status).toBe('204 No Content');
  host.close();
});

test('GetExtensionVersion and TerminateExtension as IIS calls them', () => {
  const host = new EmulatedHost();
  const version = host.getExtensionVersion((pVer) => {
    const { writeVersionInfo } = jest.requireActual('../../src/ecb/entry-points.js') as typeof import('../../src/ecb/entry-points.js');
    writeVersionInfo(pVer, 'test extension');
    return true;
  });
  expect(version).toMatchObject({ ok: true, major: 8, description: 'test extension' });
  expect(host.terminateExtension((flags) => flags === HSE_TERM_MUST_UNLOAD, HSE_TERM_MUST_UNLOAD)).toBe(true);
  host.close();
});
