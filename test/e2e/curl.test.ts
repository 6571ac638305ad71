/** createServer against curl, a client with its own HTTP/1.x stack. Skipped (with the reason printed) without curl. */
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { start, type Started } from './support.js';

let curlVersion: string | null = null;
try {
  curlVersion = execFileSync('curl', ['--version'], { encoding: 'utf8' });
} catch {
  curlVersion = null;
}
if (curlVersion === null) console.log('curl is not installed: the curl end-to-end cases are skipped');
const withCurl = curlVersion === null ? describe.skip : describe;

function curl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '20', ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`curl ${args.join(' ')} failed: ${error.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

withCurl('curl', () => {
  let s: Started;
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'isapi-curl-'));
    file = join(dir, 'body.bin');
    writeFileSync(file, Buffer.alloc(3 * 1024 * 1024, 0x63));
    s = await start((req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/echo') {
        let n = 0;
        req.on('data', (c: Buffer) => (n += c.length));
        req.on('end', () => res.end(`got ${n} bytes, cbTotalBytes ${(req as unknown as { isapi: { ecb: { totalBytes: number } } }).isapi.ecb.totalBytes}`));
        return;
      }
      const body = `hello ${req.url} over HTTP/${req.httpVersion}`;
      res.setHeader('Content-Length', Buffer.byteLength(body));
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });
  afterAll(async () => {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('GET: IIS head, body', async () => {
    const { stdout } = await curl(['-i', s.url('/a')]);
    expect(stdout).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(stdout).toContain('Server: Microsoft-IIS/10.0\r\n');
    expect(stdout.endsWith('hello /a over HTTP/1.1')).toBe(true);
  });

  test('two URLs in one invocation reuse the connection', async () => {
    const { stdout, stderr } = await curl(['-v', s.url('/1'), s.url('/2')]);
    expect(stdout).toBe('hello /1 over HTTP/1.1hello /2 over HTTP/1.1');
    expect(stderr).toMatch(/Re-?using existing connection/i);
  });

  test('HTTP/1.0 (-0): served, connection closed', async () => {
    const { stdout } = await curl(['-0', '-i', s.url('/old')]);
    expect(stdout).toContain('Connection: close\r\n');
    expect(stdout.endsWith('hello /old over HTTP/1.0')).toBe(true);
  });

  test('HEAD (-I)', async () => {
    const { stdout } = await curl(['-I', s.url('/h')]);
    expect(stdout).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(stdout).toContain(`Content-Length: ${'hello /h over HTTP/1.1'.length}`);
  });

  test('Expect: 100-continue with a 3 MB body: curl sees the 100, the app the whole body', async () => {
    const { stdout, stderr } = await curl(['-v', '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, s.url('/echo')]);
    expect(stderr).toMatch(/HTTP\/1\.1 100 Continue/);
    expect(stdout).toBe(`got ${3 * 1024 * 1024} bytes, cbTotalBytes ${3 * 1024 * 1024}`);
  });

  test('a chunked upload is de-chunked, cbTotalBytes 0xFFFFFFFF', async () => {
    const { stdout } = await curl(['-H', 'Transfer-Encoding: chunked', '-H', 'Expect:', '--data-binary', `@${file}`, s.url('/echo')]);
    expect(stdout).toBe(`got ${3 * 1024 * 1024} bytes, cbTotalBytes ${0xffffffff}`);
  });

  test('--http2 on http:// offers h2c; the offer is ignored and the request served over HTTP/1.1', async () => {
    if (!/HTTP2/.test(curlVersion ?? '')) {
      console.log('this curl has no HTTP/2 support: the h2c case is skipped');
      return;
    }
    const { stdout } = await curl(['--http2', s.url('/h2c')]);
    expect(stdout).toBe('hello /h2c over HTTP/1.1');
  });
});
