/**
 * The loopback servers of `npm run bench` (bench/compare.ts), in a process of their own so that the client
 * (undici, in the bench's process) and the server do not share one JS thread. Four servers on 127.0.0.1, ports
 * chosen by the OS: node:http and isapi-http's createServer, each serving the plain listener and the Express app.
 * Only the one being measured gets requests; the others sit idle. Prints one JSON line of ports, then serves until
 * stdin closes.
 */
import * as http from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import { createServer } from '../../src/host/dev-server.js';
import { createExpressApp, plainListener } from './apps.js';

const listen = (server: Server): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });

const servers = {
  'plain/node:http': http.createServer(plainListener),
  'plain/isapi-http': createServer(plainListener),
  'express/node:http': http.createServer(createExpressApp()),
  'express/isapi-http': createServer(createExpressApp()),
};
const ports: Record<string, number> = {};
for (const [name, server] of Object.entries(servers)) ports[name] = await listen(server);
process.stdout.write(`${JSON.stringify({ pid: process.pid, ports })}\n`);

process.stdin.resume();
process.stdin.on('end', () => {
  for (const server of Object.values(servers)) {
    server.close();
    (server as http.Server).closeAllConnections();
  }
});
