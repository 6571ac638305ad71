/** What the app sees of the request: url, version, headers, socket facts and req.isapi, on MockEcb and EmulatedHost. */
import type { IncomingMessage } from 'node:http';
import type { IsapiIncomingMessage } from '../../src/http/exchange.js';
import { AppRunner, FORMS, type App } from '../support/run-app.js';

const runners: AppRunner[] = [];
afterAll(() => runners.forEach((r) => r.close()));

/** Run a request and return what `inspect` extracted from req inside the app. */
async function seen<T>(form: (typeof FORMS)[number], request: Parameters<AppRunner['run']>[1], inspect: (req: IsapiIncomingMessage) => T, options = {}, hostOptions = {}): Promise<T> {
  let value!: T;
  const app: App = (req: IncomingMessage, res) => {
    value = inspect(req as IsapiIncomingMessage);
    res.end();
  };
  const runner = new AppRunner(app, options);
  runners.push(runner);
  await runner.run(form, request, hostOptions);
  return value;
}

describe.each(FORMS)('the request on %s', (form) => {
  test('req.url is the raw target: %2F and Unicode escapes survive, the query is kept', async () => {
    expect(await seen(form, { url: '/a%2Fb/caf%C3%A9?x=1&y=%20' }, (req) => req.url)).toBe('/a%2Fb/caf%C3%A9?x=1&y=%20');
  });

  test('an app mounted at /shop routes /cart; req.isapi keeps the originals; keepMountPath keeps the full path', async () => {
    const vars = { APPL_MD_PATH: '/LM/W3SVC/1/ROOT/shop' };
    expect(await seen(form, { url: '/Shop/cart?id=1', serverVariables: vars }, (req) => [req.url, req.isapi.rawUrl, req.isapi.mountPath])).toEqual([
      '/cart?id=1',
      '/Shop/cart?id=1',
      '/shop',
    ]);
    expect(await seen(form, { url: '/shop/cart', serverVariables: vars }, (req) => req.url, { keepMountPath: true })).toBe('/shop/cart');
  });

  test('httpVersion comes from SERVER_PROTOCOL, as numbers where Node uses numbers', async () => {
    expect(await seen(form, { httpVersion: '1.0' }, (req) => [req.httpVersion, req.httpVersionMajor, req.httpVersionMinor])).toEqual(['1.0', 1, 0]);
    expect(await seen(form, { httpVersion: '2' }, (req) => req.httpVersion)).toBe('2.0');
  });

  test('rawHeaders keep wire order, case and duplicates; headers follow Node\'s rules', async () => {
    const [raw, headers] = await seen(
      form,
      { headers: [['Host', 'h'], ['X-B', '2'], ['Cookie', 'a=1'], ['Cookie', 'b=2'], ['Content-Type', 'text/a'], ['Content-Type', 'text/b'], ['X-B', '3']] },
      (req) => [req.rawHeaders, req.headers] as const,
    );
    expect(raw).toEqual(['Host', 'h', 'X-B', '2', 'Cookie', 'a=1', 'Cookie', 'b=2', 'Content-Type', 'text/a', 'Content-Type', 'text/b', 'X-B', '3']);
    expect(headers).toEqual({ host: 'h', 'x-b': '2, 3', cookie: 'a=1; b=2', 'content-type': 'text/a' });
  });

  test('Host is always present, built from SERVER_NAME and a non-default SERVER_PORT when the client sent none', async () => {
    const vars = { ALL_RAW: 'X-Only: 1\r\n', SERVER_NAME: 'intranet', SERVER_PORT: '8080' };
    expect(await seen(form, { serverVariables: vars }, (req) => req.headers.host)).toBe('intranet:8080');
  });

  test('socket facts come from server variables', async () => {
    const vars = { REMOTE_ADDR: '10.1.2.3', REMOTE_PORT: '51000', LOCAL_ADDR: '10.0.0.1', SERVER_PORT: '443', HTTPS: 'on' };
    expect(
      await seen(form, { serverVariables: vars }, (req) => {
        const s = req.socket as unknown as Record<string, unknown> & { address(): unknown };
        return [s.remoteAddress, s.remotePort, s.remoteFamily, s.localAddress, s.localPort, s.encrypted, s.address()];
      }),
    ).toEqual(['10.1.2.3', 51000, 'IPv4', '10.0.0.1', 443, true, { address: '10.0.0.1', family: 'IPv4', port: 443 }]);
    expect(await seen(form, {}, (req) => (req.socket as unknown as { encrypted?: boolean }).encrypted)).toBeUndefined();
  });

  test('req.isapi.user comes from IIS authentication only; a client header cannot forge it', async () => {
    const windows = { AUTH_USER: 'CORP\\ann', AUTH_TYPE: 'Negotiate', LOGON_USER: 'CORP\\ann' };
    expect(await seen(form, { serverVariables: windows }, (req) => req.isapi.user)).toEqual({ name: 'CORP\\ann', authType: 'Negotiate', logonUser: 'CORP\\ann' });
    const forged = { 'Auth-User': 'CORP\\admin', 'Remote-User': 'CORP\\admin', 'Logon-User': 'CORP\\admin', 'X-Forwarded-User': 'CORP\\admin' };
    expect(await seen(form, { headers: forged }, (req) => req.isapi.user)).toBeNull();
  });

  test('req.isapi.serverVariable reads any variable, UNICODE_ ones decoded', async () => {
    expect(await seen(form, { url: '/%E6%97%A5' }, (req) => [req.isapi.serverVariable('UNICODE_URL'), req.isapi.serverVariable('NOPE')])).toEqual(['/日', null]);
  });

  test('req.isapi.clientCertificate() is read on demand through GET_CERT_INFO_EX', async () => {
    const cert = Buffer.from([0x30, 0x82, 0x01, 0x0a, 1, 2, 3]);
    const got = await seen(form, {}, (req) => req.isapi.clientCertificate(), {}, { clientCertificate: { encoded: cert } });
    expect(got?.encoded.equals(cert)).toBe(true);
    expect(await seen(form, {}, (req) => req.isapi.clientCertificate())).toBeNull();
  });

  test('req.isapi.ecb is the request\'s Ecb', async () => {
    expect(await seen(form, { method: 'PUT', body: 'x' }, (req) => [req.isapi.ecb.method, req.isapi.ecb.totalBytes])).toEqual(['PUT', 1]);
  });
});
