/**
 * Large bodies both ways through createServer, with memory bounded: the request body is pulled from the socket
 * only when the extension reads (async ReadClient), and each async WriteClient completes only once the socket has
 * taken the bytes. Also a client that goes away mid-upload and mid-download.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { delay, rawConnect, start, waitFor, type Started } from './support.js';

const MB = 1024 * 1024;
const TOTAL = 200 * MB;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);
const RSS_LIMIT = 64 * MB;

function sampleRss(): { stop(): number } {
  const base = process.memoryUsage().rss;
  let max = base;
  const timer = setInterval(() => (max = Math.max(max, process.memoryUsage().rss)), 10);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(max, process.memoryUsage().rss) - base;
    },
  };
}

function body(bytes: number): Readable {
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < bytes; sent += CHUNK.length) yield bytes - sent >= CHUNK.length ? CHUNK : CHUNK.subarray(0, bytes - sent);
    })(),
  );
}

async function upload(s: Started, bytes: number, headers: Record<string, string | number>): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(s.url('/upload'), { method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    pipeline(body(bytes), req).catch(reject);
  });
}

describe('200 MB each way', () => {
  let s: Started;
  let written = 0;
  const events: string[] = [];
  beforeAll(async () => {
    s = await start(async (req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/upload') {
        let n = 0;
        req.on('data', (c: Buffer) => (n += c.length));
        req.on('aborted', () => events.push('req:aborted'));
        req.on('close', () => events.push(`req:close:${req.complete}`));
        req.on('error', () => undefined);
        req.on('end', () => res.end(String(n)));
        return;
      }
      const size = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('bytes') ?? TOTAL);
      written = 0;
      res.setHeader('Content-Length', size);
      res.on('close', () => events.push(`res:close:${res.writableFinished}`));
      while (written < size && !res.destroyed) {
        const piece = size - written >= CHUNK.length ? CHUNK : CHUNK.subarray(0, size - written);
        written += piece.length;
        if (!res.write(piece)) {
          await new Promise<void>((resolve) => {
            const go = (): void => {
              res.off('drain', go);
              res.off('close', go);
              resolve();
            };
            res.on('drain', go);
            res.on('close', go);
          });
        }
      }
      res.end();
    });
    // Warm up: the first transfers load code and grow the heap; measure after them.
    await upload(s, 4 * MB, { 'Content-Length': 4 * MB });
    await new Promise<void>((resolve) => http.get(s.url('/download?bytes=' + 4 * MB), (res) => res.resume().on('end', resolve)));
  });
  afterAll(() => s.close());
  beforeEach(() => {
    events.length = 0;
  });

  test('a 200 MB upload (Content-Length) streams to the app with RSS growth under 64 MB', async () => {
    const rss = sampleRss();
    const t0 = Date.now();
    expect(await upload(s, TOTAL, { 'Content-Length': TOTAL })).toBe(String(TOTAL));
    const grown = rss.stop();
    console.log(`200 MB upload: ${Date.now() - t0} ms, RSS growth ${(grown / MB).toFixed(1)} MB`);
    expect(grown).toBeLessThan(RSS_LIMIT);
  });

  test('a 200 MB download with backpressure: a paused client holds the app back, RSS growth under 64 MB', async () => {
    const rss = sampleRss();
    const t0 = Date.now();
    let received = 0;
    let gap = -1;
    await new Promise<void>((resolve, reject) => {
      http.get(s.url('/download'), (res) => {
        res.on('data', (c: Buffer) => {
          received += c.length;
          if (gap === -1 && received >= 20 * MB) {
            gap = 0;
            res.pause();
            // While the client reads nothing, the app can only get as far as the socket buffers let it.
            setTimeout(() => {
              gap = written - received;
              res.resume();
            }, 300);
          }
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
    });
    const grown = rss.stop();
    console.log(`200 MB download: ${Date.now() - t0} ms, RSS growth ${(grown / MB).toFixed(1)} MB, app ahead of a paused client by ${(gap / MB).toFixed(1)} MB`);
    expect(received).toBe(TOTAL);
    expect(gap).toBeGreaterThanOrEqual(0);
    expect(gap).toBeLessThan(32 * MB);
    expect(grown).toBeLessThan(RSS_LIMIT);
  });

  test('a 20 MB chunked upload is de-chunked for the extension', async () => {
    expect(await upload(s, 20 * MB, { 'Transfer-Encoding': 'chunked' })).toBe(String(20 * MB));
  });

  test("a client gone mid-upload: the app sees 'aborted' and 'close', the session ends, the server keeps serving", async () => {
    const socket = await rawConnect(s.port);
    socket.on('error', () => undefined);
    socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${TOTAL}\r\n\r\n`);
    for (let i = 0; i < 64; i++) socket.write(CHUNK);
    await waitFor(() => s.server.inFlight === 1, 5000, 'the upload to start');
    await delay(50);
    socket.destroy();
    await waitFor(() => events.includes('req:aborted') && events.includes('req:close:false'), 5000, "the app's aborted/close");
    await waitFor(() => s.server.inFlight === 0, 5000, 'the session to end');
    expect(await upload(s, 1000, { 'Content-Length': 1000 })).toBe('1000');
  });

  test("a client gone mid-download: the app sees res 'close' without finishing, stops, and the server keeps serving", async () => {
    await new Promise<void>((resolve) => {
      const req = http.get(s.url('/download'), (res) => {
        let received = 0;
        res.on('data', (c: Buffer) => {
          received += c.length;
          if (received >= 5 * MB) {
            req.destroy();
            resolve();
          }
        });
        res.on('error', () => undefined);
      });
      req.on('error', () => undefined);
    });
    await waitFor(() => events.includes('res:close:false'), 5000, "the app's res close");
    await waitFor(() => s.server.inFlight === 0, 5000, 'the session to end');
    expect(written).toBeLessThan(TOTAL);
    expect(await upload(s, 1000, { 'Content-Length': 1000 })).toBe('1000');
  });
});
