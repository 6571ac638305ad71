/** `isapi-http trace`: the real command, in a child process, reading a live channel of this process. */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { createTraceChannel } from '../../src/trace/channel.js';

const ROOT = resolve(__dirname, '../..');

test('prints the ring of a named channel and exits with --no-follow; --json gives raw records', async () => {
  const name = `cli-test-${process.pid}`;
  const channel = createTraceChannel({ name });
  await channel.ready;
  channel.info('hello from the extension', { requestId: 'r-1' });
  channel.error('something failed', { requestId: 'r-2' });
  const run = (args: string[]): Promise<string> =>
    new Promise((done, fail) =>
      execFile(process.execPath, ['--import', './tools/ts-register.mjs', 'src/cli/main.ts', 'trace', name, '--no-follow', ...args], { cwd: ROOT, timeout: 30_000 }, (error, stdout) =>
        error ? fail(error) : done(stdout),
      ),
    );
  try {
    const text = await run([]);
    expect(text).toContain('hello from the extension');
    expect(text).toContain('something failed');
    const json = (await run(['--json', '--request', 'r-2'])).trim().split('\n').map((l) => JSON.parse(l) as { msg: string; requestId?: string });
    expect(json.map((r) => r.msg)).toEqual(['something failed']);
  } finally {
    await channel.close();
  }
});
