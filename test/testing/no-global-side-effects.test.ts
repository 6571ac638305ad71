/**
 * Issue 5 / pitfall P1: light-my-request re-parents Express's shared request/response prototypes, so after one
 * inject() every Express app in the process runs on its objects. Here one process mixes isapi-http's inject() (mock
 * and native), a real node:http server and isapi-http's dev server, all serving the same Express apps, interleaved;
 * every one answers as node:http does, and no prototype anywhere changes.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import express4 from 'express4';
import { createServer } from '../../src/index.js';
import { inject } from '../../src/testing.js';
import { snapshotPrototypes } from '../support/prototypes.js';

function app(factory: typeof express | typeof express4, tag: string): http.RequestListener {
  const a = factory();
  a.get('/', (req, res) => {
    res.set('X-App', tag).send(`${tag} ${req.get('if-modified-since') ?? 'no-ims'} ${req.protocol}`);
  });
  return a as unknown as http.RequestListener;
}

async function listen(server: http.Server | ReturnType<typeof createServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function get(port: number): Promise<{ status: number; app: string | null; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { 'If-Modified-Since': 'Sat, 01 Jan 2000 00:00:00 GMT' } });
  return { status: res.status, app: res.headers.get('x-app'), body: await res.text() };
}

test('inject (mock and native), node:http and createServer interleaved in one process: same answers, no prototype changed', async () => {
  const prototypes = snapshotPrototypes();
  const apps = [app(express, 'e5'), app(express4, 'e4')] as const;
  const servers = apps.flatMap((a) => [http.createServer(a), createServer(a)]);
  try {
    const ports = await Promise.all(servers.map(listen));
    for (let round = 0; round < 3; round++) {
      for (const [i, a] of apps.entries()) {
        const tag = i === 0 ? 'e5' : 'e4';
        const expected = { status: 200, app: tag, body: `${tag} Sat, 01 Jan 2000 00:00:00 GMT http` };
        for (const native of [false, true]) {
          const r = await inject(a, { url: '/', headers: { 'If-Modified-Since': 'Sat, 01 Jan 2000 00:00:00 GMT' } }, { native });
          expect({ status: r.statusCode, app: r.headers['x-app'] ?? null, body: r.text() }).toEqual(expected);
        }
        expect(await get(ports[2 * i] as number)).toEqual(expected); // node:http
        expect(await get(ports[2 * i + 1] as number)).toEqual(expected); // isapi-http's dev server
      }
    }
    expect(prototypes.changes().filter((p) => p.changes.length > 0)).toEqual([]);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
});
