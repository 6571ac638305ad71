/**
 * The emulated IIS against hand-written extensions (createExtension over a raw IsapiHandler that drives the Ecb
 * itself), to pin what IIS does with the connection after each kind of answer (ISAPI.md §4, §7): the framing and
 * fKeepConn decide keep-alive, HSE_STATUS_ERROR and CLOSE_CONNECTION close, and nothing sent becomes a 500.
 */
import type { Ecb } from '../../src/ecb/ecb.js';
import { HSE_STATUS_ERROR, HSE_STATUS_PENDING, HSE_STATUS_SUCCESS, HSE_STATUS_SUCCESS_AND_KEEP_CONN } from '../../src/ecb/constants.js';
import { createExtension } from '../../src/handlers/create-extension.js';
import type { IsapiHandler } from '../../src/handlers/handler.js';
import { collect, parseResponses, rawConnect, start, type Started } from './support.js';

function handler(handle: (ecb: Ecb) => number): IsapiHandler {
  return { handle, terminate: async () => undefined, inFlight: 0 };
}

const routes: Record<string, (ecb: Ecb) => number> = {
  // Content-Length + fKeepConn: the connection stays.
  '/ok': (ecb) => {
    ecb.sendResponseHeaders({ status: '200 OK', headers: 'Content-Length: 2\r\n\r\n', keepConn: true });
    ecb.writeClientAsync(Buffer.from('ok'), () => ecb.doneWithSession(HSE_STATUS_SUCCESS_AND_KEEP_CONN));
    return HSE_STATUS_PENDING;
  },
  // The extension writes its own chunk frames (§7.2): self-delimiting, kept.
  '/chunks': (ecb) => {
    ecb.sendResponseHeaders({ status: '200 OK', headers: 'Transfer-Encoding: chunked\r\n\r\n', keepConn: true });
    ecb.writeClient(Buffer.from('2\r\nhi\r\n0\r\n\r\n'));
    return HSE_STATUS_SUCCESS;
  },
  // No framing: IIS adds Connection: close and ends the body by closing (§7.2).
  '/unframed': (ecb) => {
    ecb.sendResponseHeaders({ status: '200 OK', headers: 'Content-Type: text/plain\r\n\r\n', keepConn: true });
    ecb.writeClient(Buffer.from('to the end'));
    return HSE_STATUS_SUCCESS;
  },
  // Framed, but fKeepConn FALSE.
  '/nokeep': (ecb) => {
    ecb.sendResponseHeaders({ status: '200 OK', headers: 'Content-Length: 2\r\n\r\n', keepConn: false });
    ecb.writeClient(Buffer.from('nk'));
    return HSE_STATUS_SUCCESS;
  },
  // Content-Length says 10, 3 bytes come: the message is incomplete, the connection must close.
  '/short': (ecb) => {
    ecb.sendResponseHeaders({ status: '200 OK', headers: 'Content-Length: 10\r\n\r\n', keepConn: true });
    ecb.writeClient(Buffer.from('abc'));
    return HSE_STATUS_SUCCESS;
  },
  // A complete response, then DONE with HSE_STATUS_ERROR.
  '/error-status': (ecb) => {
    ecb.sendResponseHeaders({ status: '200 OK', headers: 'Content-Length: 1\r\n\r\n', keepConn: true });
    ecb.writeClientAsync(Buffer.from('e'), () => ecb.doneWithSession(HSE_STATUS_ERROR));
    return HSE_STATUS_PENDING;
  },
  // Nothing sent at all, HSE_STATUS_ERROR returned: IIS answers 500 (§4).
  '/nothing': () => HSE_STATUS_ERROR,
  // WriteClient without any header call: raw bytes, no status line (§7.1, §13 item 9).
  '/raw': (ecb) => {
    ecb.writeClient(Buffer.from('RAW'));
    return HSE_STATUS_SUCCESS;
  },
  // A redirect through HSE_REQ_SEND_URL_REDIRECT_RESP.
  '/redirect': (ecb) => {
    ecb.sendUrlRedirect('http://example.com/elsewhere');
    return HSE_STATUS_SUCCESS;
  },
};

let s: Started;
beforeAll(async () => {
  const extension = createExtension(
    handler((ecb) => {
      const url = ecb.getServerVariableString('URL') ?? '/';
      return (routes[url] ?? routes['/ok']!)(ecb);
    }),
  );
  s = await start(null, { extension });
});
afterAll(() => s.close());

async function exchange(path: string): Promise<{ text: string; closed: boolean }> {
  const socket = await rawConnect(s.port);
  const answer = collect(socket, { timeoutMs: 300 });
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  const { data, closed } = await answer;
  socket.destroy();
  return { text: data.toString('latin1'), closed };
}

test.each([
  ['/ok', false, 'Content-Length: 2'],
  ['/chunks', false, '2\r\nhi\r\n0\r\n\r\n'],
  ['/unframed', true, 'Connection: close'],
  ['/nokeep', true, 'Connection: close'],
  ['/short', true, 'abc'],
  ['/error-status', true, '\r\n\r\ne'],
  ['/nothing', true, 'HTTP/1.1 500 Internal Server Error'],
])('%s: connection closed by IIS = %s', async (path, closes, contains) => {
  const { text, closed } = await exchange(path);
  expect(text).toContain(contains);
  expect(closed).toBe(closes);
});

test('WriteClient without headers goes out raw, and the connection closes', async () => {
  const { text, closed } = await exchange('/raw');
  expect(text).toBe('RAW');
  expect(closed).toBe(true);
});

test('SEND_URL_REDIRECT_RESP answers 302 with Location', async () => {
  const { text } = await exchange('/redirect');
  const [res] = parseResponses(Buffer.from(text, 'latin1'));
  expect(res!.statusCode).toBe(302);
  expect(res!.headers.location).toBe('http://example.com/elsewhere');
});

test('an extension server emits no request event and keeps serving', async () => {
  let requests = 0;
  s.server.on('request', () => requests++);
  expect(await (await fetch(s.url('/ok'))).text()).toBe('ok');
  expect(requests).toBe(0);
});
