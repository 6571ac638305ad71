/**
 * The `isapi-http serve` command: its argument checks (in process), and the real command in a child process (run
 * from source through tools/ts-register.mjs, so no build is needed): it prints the URL, logs each request, serves
 * apps and extension modules, and stops gracefully on SIGINT / SIGTERM with exit code 0; bad arguments exit 2.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseCommand, UsageError } from '../../src/cli/args.js';
import { ErrorCodes } from '../../src/errors.js';
import { ROOT, runCli } from './cli-support.js';

describe('arguments', () => {
  test('defaults and every option', () => {
    expect(parseCommand(['serve', 'app.js'])).toEqual({
      kind: 'serve',
      args: { module: 'app.js', port: 3000, host: undefined, exportName: 'default', handler: undefined, workers: undefined, watch: false, mount: '', serverVariables: {}, readAhead: undefined },
    });
    expect(
      parseCommand(['serve', 'app.js', '--port', '0', '--host', '127.0.0.1', '--export', 'app', '--handler', 'simple', '--mount', '/shop/', '--var', 'AUTH_USER=CORP\\ann', '--var', 'https=on', '--read-ahead', '0']),
    ).toEqual({
      kind: 'serve',
      args: { module: 'app.js', port: 0, host: '127.0.0.1', exportName: 'app', handler: 'simple', workers: undefined, watch: false, mount: '/shop', serverVariables: { AUTH_USER: 'CORP\\ann', HTTPS: 'on' }, readAhead: 0 },
    });
    expect(parseCommand(['serve', 'app.js', '--watch', '--workers', '2'])).toMatchObject({ kind: 'serve', args: { handler: 'threadpool', workers: 2, watch: true } });
    expect(parseCommand(['serve', 'app.js', '--handler', 'threadpool', '--workers', '3'])).toMatchObject({ kind: 'serve', args: { handler: 'threadpool', workers: 3, watch: false } });
    expect(parseCommand(['trace'])).toEqual({ kind: 'trace', args: { name: undefined, json: false, level: undefined, requestId: undefined, follow: true } });
    expect(parseCommand(['trace', 'pool1', '--json', '--level', 'warn', '--request', 'r-7', '--no-follow'])).toEqual({
      kind: 'trace',
      args: { name: 'pool1', json: true, level: 'warn', requestId: 'r-7', follow: false },
    });
    expect(parseCommand(['--help'])).toEqual({ kind: 'help' });
    expect(parseCommand(['--version'])).toEqual({ kind: 'version' });
  });

  test.each([
    [[], /no command/],
    [['start', 'a.js'], /unknown command "start"/],
    [['serve'], /needs the module/],
    [['serve', 'a.js', 'b.js'], /unexpected argument/],
    [['serve', 'a.js', '--port', '70000'], /--port must be from 0 to 65535/],
    [['serve', 'a.js', '--port', 'abc'], /--port must be a whole number/],
    [['serve', 'a.js', '--handler', 'fork'], /--handler must be simple or threadpool/],
    [['serve', 'a.js', '--workers', '2'], /--workers applies to --handler threadpool/],
    [['serve', 'a.js', '--handler', 'threadpool', '--workers', '0'], /--workers must be from 1/],
    [['serve', 'a.js', '--watch', '--handler', 'simple'], /--watch needs --handler threadpool/],
    [['serve', 'a.js', '--mount', 'shop'], /--mount: mount must start with "\/"/],
    [['serve', 'a.js', '--var', 'NOEQUALS'], /--var takes NAME=VALUE/],
    [['serve', 'a.js', '--var', 'REMOTE_ADDR=1.2.3.4'], /real TCP connection/],
    [['serve', 'a.js', '--export', '1bad'], /--export must be an export name/],
    [['serve', 'a.js', '--nope'], /Unknown option '--nope'/],
    [['serve', 'a.js', '--port'], /argument missing|requires an argument|--port/],
    [['trace', 'a', 'b'], /unexpected argument/],
    [['trace', '--level', 'loud'], /--level must be debug, info, warn, error or fatal/],
    [['serve', 'a.js', '--json'], /belong to the trace command/],
  ])('%j is a usage error: %s', (argv, message) => {
    let error: unknown;
    try {
      parseCommand(argv as string[]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect(error).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
    expect((error as Error).message).toMatch(message);
  });
});

describe('the command', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'isapi-cli-'));
    const src = pathToFileURL(join(ROOT, 'src/index.ts')).href;
    writeFileSync(join(dir, 'ext.mjs'), `import { createExtension, SimpleHandler } from '${src}';\nexport default createExtension(new SimpleHandler((req, res) => res.end('ext ' + req.url + ' ' + req.isapi.serverVariable('APPL_MD_PATH'))));\n`);
    writeFileSync(
      join(dir, 'slow.cjs'),
      `module.exports.app = (req, res) => { console.log('in app ' + req.url); setTimeout(() => res.end('slow done'), 400); };\n`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('serves the Express example: prints the URL, logs each request, SIGINT stops it with exit code 0', async () => {
    const cli = runCli(['serve', 'examples/express/app.js', '--port', '0', '--host', '127.0.0.1', '--var', 'AUTH_USER=CORP\\ann']);
    try {
      const [, url] = await cli.line(/listening on (http:\/\/\S+)/);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const page = await (await fetch(url!)).text();
      expect(page).toContain('Served via Microsoft-IIS/10.0, as CORP\\ann.');
      expect(await (await fetch(`${url}api/hello?name=Ann`)).json()).toEqual({ message: 'Hello, Ann!' });
      const echo = await fetch(`${url}api/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":[1,2]}' });
      expect(await echo.json()).toEqual({ echo: { x: [1, 2] } });
      expect(await (await fetch(`${url}static/hello.txt`)).text()).toContain('Hello from a static file');
      await cli.line(/^GET \/static\/hello\.txt 200 \d+\.\d ms$/);
      expect(cli.out).toEqual(expect.arrayContaining([expect.stringMatching(/^GET \/ 200 /), expect.stringMatching(/^GET \/api\/hello\?name=Ann 200 /), expect.stringMatching(/^POST \/api\/echo 200 /)]));
      cli.child.kill('SIGINT');
      expect(await cli.exited).toBe(0);
      expect(cli.out).toContain('isapi-http: stopped');
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  test('serves an extension module (its default export is an IsapiExtension) under --mount; SIGTERM exits 0', async () => {
    const cli = runCli(['serve', join(dir, 'ext.mjs'), '--port', '0', '--host', '127.0.0.1', '--mount', '/shop']);
    try {
      const [, url] = await cli.line(/listening on (http:\/\/\S+)/);
      expect(url).toMatch(/\/shop\/$/);
      expect(await (await fetch(`${url}cart`)).text()).toBe('ext /cart /LM/W3SVC/1/ROOT/shop');
      expect((await fetch(url!.replace('/shop/', '/elsewhere'))).status).toBe(404);
      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  test('a request in flight at SIGINT finishes before the exit (CJS module, named export)', async () => {
    const cli = runCli(['serve', join(dir, 'slow.cjs'), '--export', 'app', '--port', '0', '--host', '127.0.0.1']);
    try {
      const [, url] = await cli.line(/listening on (http:\/\/\S+)/);
      const response = fetch(`${url}slow`).then(async (r) => `${r.status} ${await r.text()}`);
      await cli.line(/^in app \/slow$/);
      cli.child.kill('SIGINT');
      expect(await response).toBe('200 slow done');
      expect(await cli.exited).toBe(0);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  test('bad arguments exit with code 2 and say what was wrong', async () => {
    const missing = runCli(['serve', 'does/not/exist.js']);
    expect(await missing.exited).toBe(2);
    expect(missing.err.join('')).toMatch(/the module "does\/not\/exist\.js" does not exist/);
    const extensionInPool = runCli(['serve', join(dir, 'ext.mjs'), '--handler', 'threadpool', '--workers', '1']);
    expect(await extensionInPool.exited).toBe(1);
    expect(extensionInPool.err.join('')).toMatch(/is an ISAPI extension \(createExtension\(\.\.\.\)\), which brings its own handler/);
  });
});
