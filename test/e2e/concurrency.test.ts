/** 200 clients at once, each on its own TCP connection, all in flight together through native ECBs. */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { start } from './support.js';

test('200 concurrent connections are all served, in flight at the same time, and every session ends', async () => {
  let active = 0;
  let peak = 0;
  let release!: () => void;
  const allIn = new Promise<void>((r) => (release = r));
  // Never wait forever if fewer than 200 arrive: the assertions below then say how many did.
  const fallback = setTimeout(() => release(), 10_000);
  const s = await start(async (req: IncomingMessage, res: ServerResponse) => {
    active++;
    peak = Math.max(peak, active);
    if (peak === 200) release();
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    // Hold every response until all 200 are in the app: they really are concurrent.
    await allIn;
    active--;
    res.setHeader('Content-Type', 'text/plain');
    res.end(`${req.url} ${Buffer.concat(parts).length}`);
  });
  let connections = 0;
  s.server.on('connection', () => connections++);
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  try {
    const t0 = Date.now();
    const bodies = await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) =>
          new Promise<string>((resolve, reject) => {
            const payload = Buffer.alloc(i * 10, 0x62);
            const req = http.request(s.url(`/c${i}`), { method: 'POST', agent, headers: { 'Content-Length': payload.length } }, (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => (text += c));
              res.on('end', () => resolve(`${res.statusCode} ${text}`));
            });
            req.on('error', reject);
            req.end(payload);
          }),
      ),
    );
    console.log(`200 concurrent connections: ${Date.now() - t0} ms`);
    expect(bodies).toEqual(Array.from({ length: 200 }, (_, i) => `200 /c${i} ${i * 10}`));
    expect(peak).toBe(200);
    expect(connections).toBe(200);
    expect(s.server.inFlight).toBe(0);
  } finally {
    clearTimeout(fallback);
    agent.destroy();
    await s.close();
  }
});
