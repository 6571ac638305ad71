/**
 * What every framework app in the matrix shares: the fixtures the scenarios send and expect, the probe an app uses to
 * report what it observed, and small helpers for frameworks that have no multipart parser or SSE support of their own.
 *
 * The routes every scenario app implements (scenarios.ts sends exactly these):
 *   GET  /users/:id?q=…   200 JSON { id, q }
 *   POST /json            200 JSON { got: <the parsed JSON body> }
 *   POST /form            200 JSON { got: <the parsed urlencoded fields> }
 *   POST /upload          200 JSON UploadSummary (multipart/form-data: a field `note` and a file `file`)
 *   GET  /cookies         200, Set-Cookie a=1 and b=2 (two header lines)
 *   GET  /redirect        302, Location: /target
 *   GET  /static/*        the framework's static middleware over PUBLIC_DIR
 *   GET  /sse             text/event-stream: `data: tick 1` … `data: tick 3`, 15 ms apart, then the end
 *   GET  /boom            the handler throws Error('boom'); the app's error handler answers 500 JSON { error: 'boom' }
 *   GET  /async           an async handler: awaits a timer, then 200 JSON { async: true }
 *   GET  /big             200, the 20 MiB BIG buffer
 *   GET  /abort           streams kit.probe.source() (16 MiB in 64 KiB chunks); the raw res goes to kit.probe.watch()
 *   GET  /whoami          200 JSON { ip, protocol } as the FRAMEWORK reports them (no trust proxy)
 *   anything else         404
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import busboy from 'busboy';

export const PUBLIC_DIR = join(__dirname, 'public');
export const STATIC_NAME = 'hello.txt';
export const STATIC_CONTENT = readFileSync(join(PUBLIC_DIR, STATIC_NAME));

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

function patterned(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed + (i >>> 13)) & 0xff;
  return b;
}

/** The 20 MiB response body. */
export const BIG = patterned(20 * 1024 * 1024, 7);
export const BIG_SHA = sha256(BIG);

/** The file uploaded by the multipart scenario: a little over 5 MiB. */
export const UPLOAD_FILE = patterned(5 * 1024 * 1024 + 12345, 3);
export const UPLOAD_SHA = sha256(UPLOAD_FILE);

export interface UploadSummary {
  fields: Record<string, string>;
  files: { field: string; filename: string; size: number; sha256: string }[];
}

/** A multipart/form-data body as a browser would send it. */
export function multipartBody(): { contentType: string; body: Buffer } {
  const boundary = '----isapiMatrixBoundary7MA4YWxkTrZu0gW';
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello upload\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    UPLOAD_FILE,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { contentType: `multipart/form-data; boundary=${boundary}`, body };
}

/** For frameworks without a multipart parser of their own: busboy over the raw request stream. */
export function readMultipart(req: IncomingMessage | Readable, headers: IncomingHttpHeaders = (req as IncomingMessage).headers): Promise<UploadSummary> {
  return new Promise((resolve, reject) => {
    const summary: UploadSummary = { fields: {}, files: [] };
    const pending: Promise<void>[] = [];
    const bb = busboy({ headers, limits: { fileSize: 32 * 1024 * 1024 } });
    bb.on('field', (name, value) => void (summary.fields[name] = value));
    bb.on('file', (field, stream, info) => {
      const hash = createHash('sha256');
      let size = 0;
      pending.push(
        new Promise((done, fail) => {
          stream.on('data', (c: Buffer) => {
            size += c.length;
            hash.update(c);
          });
          stream.on('end', () => {
            summary.files.push({ field, filename: info.filename ?? '', size, sha256: hash.digest('hex') });
            done();
          });
          stream.on('error', fail);
        }),
      );
    });
    bb.on('close', () => void Promise.all(pending).then(() => resolve(summary), reject));
    bb.on('error', reject);
    req.pipe(bb);
  });
}

/** Summarise one uploaded file held in memory (Hapi, Hono). */
export const fileSummary = (field: string, filename: string, data: Buffer): UploadSummary['files'][number] => ({ field, filename, size: data.length, sha256: sha256(data) });

export const SSE_TICKS = 3;

/** The SSE events, spaced apart so that each one is a separate write the host can be seen to receive. */
export async function* ticks(): AsyncGenerator<string> {
  for (let i = 1; i <= SSE_TICKS; i++) {
    if (i > 1) await sleep(15);
    yield `tick ${i}`;
  }
}

/** The events as an SSE byte stream, for frameworks that send a Node stream. */
export const sseStream = (): Readable =>
  Readable.from(
    (async function* () {
      for await (const t of ticks()) yield Buffer.from(`data: ${t}\n\n`);
    })(),
    { objectMode: false }, // a byte stream: Hapi refuses object-mode streams
  );

export const ABORT_CHUNK = 64 * 1024;
export const ABORT_CHUNKS = 256;

/** What the /abort handler saw happen to its response and its source stream. */
export class AbortProbe {
  events: string[] = [];
  chunksRead = 0;
  sourceDestroyed = false;

  reset(): void {
    this.events = [];
    this.chunksRead = 0;
    this.sourceDestroyed = false;
  }

  /** Watch the framework's underlying Node response. */
  watch(res: ServerResponse): void {
    res.once('finish', () => this.events.push('finish'));
    res.once('close', () => this.events.push('close'));
  }

  /** 16 MiB, produced lazily: a client abort should stop it long before the end. */
  source(): Readable {
    const chunk = Buffer.alloc(ABORT_CHUNK, 0x61);
    const src = new Readable({
      read: () => {
        if (this.chunksRead >= ABORT_CHUNKS) return void src.push(null);
        this.chunksRead++;
        src.push(chunk);
      },
    });
    src.once('close', () => void (this.sourceDestroyed = true));
    return src;
  }

  /** Resolve once the response has closed (or after `ms`). */
  async closed(ms = 2000): Promise<void> {
    const until = Date.now() + ms;
    while (!this.events.includes('close') && Date.now() < until) await sleep(5);
  }
}

export interface Kit {
  readonly publicDir: string;
  readonly probe: AbortProbe;
  /** Register clean-up (Fastify close(), Hapi stop(), Nest close()) for after the suite. */
  onClose(fn: () => unknown): void;
}

/** A JSON answer on a bare ServerResponse, for frameworks without res.json (Connect, Polka). */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

/** The event stream on a bare ServerResponse: head flushed at once, then one write per event. */
export async function writeSse(res: ServerResponse): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.flushHeaders();
  for await (const t of ticks()) res.write(`data: ${t}\n\n`);
  res.end();
}

/** The remote address and protocol from the raw socket, for frameworks that expose neither (Connect, Polka, Restana). */
export const socketFacts = (req: IncomingMessage): { ip: string | undefined; protocol: string } => ({
  ip: req.socket.remoteAddress,
  protocol: (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http',
});
