'use strict';
/**
 * The app the Windows suite serves, under SimpleHandler (on the JS main thread) and under ThreadPoolHandler (each
 * worker thread loads this module by URL). A plain Node request listener:
 *   /echo...   the request body back, byte for byte, with Content-Length and X-Body-Sha256;
 *   /probe...  JSON about what this thread sees through the ECB: UNICODE_URL, a 5000-byte variable (the
 *              GetServerVariable retry), an unknown variable and the host's failing variable (their Win32 codes
 *              come from GetLastError), and a raw GetServerVariable call with an 8-byte buffer followed by
 *              src/ecb/last-error.ts's GetLastError (must be 122, ERROR_INSUFFICIENT_BUFFER).
 * The raw call uses the stage's internals.cjs (getAbi, lastError), found through ISAPI_WIN_STAGE.
 */
const crypto = require('node:crypto');
const path = require('node:path');
const { isMainThread, threadId } = require('node:worker_threads');

let internals = null;
function getInternals() {
  if (!internals) {
    const stage = process.env.ISAPI_WIN_STAGE;
    const p = stage.startsWith('/') ? `Z:${stage.replace(/\//g, '\\')}` : stage;
    internals = require(path.join(p, 'internals.cjs'));
  }
  return internals;
}

function rawGetServerVariable(ecbAddress, name, size) {
  const { getAbi, getKoffi, lastError } = getInternals();
  const koffi = getKoffi();
  const abi = getAbi();
  const off = abi.offsets.EXTENSION_CONTROL_BLOCK;
  const conn = koffi.decode(ecbAddress, off.ConnID, 'void *');
  const gsv = koffi.decode(koffi.decode(ecbAddress, off.GetServerVariable, 'void *'), abi.protos.GetServerVariable);
  const buf = Buffer.alloc(size);
  const cell = new Uint32Array([size]);
  const ret = gsv(conn, name, buf, cell);
  const lastErrorSeen = lastError().get();
  const errnoSeen = koffi.errno();
  return { ret, need: cell[0], lastError: lastErrorSeen, errno: errnoSeen };
}

function probe(req) {
  const info = req.isapi;
  const unicode = info.ecb.getServerVariable('UNICODE_URL');
  const big = info.serverVariable('HTTP_X_BIG');
  const missing = info.ecb.serverVariable('NO_SUCH_VARIABLE');
  const failing = info.ecb.serverVariable('HTTP_X_FAIL');
  return {
    isMainThread,
    threadId,
    url: req.url,
    unicodeUrl: info.serverVariable('UNICODE_URL'),
    unicodeHex: unicode ? unicode.toString('hex') : null,
    bigLength: big ? big.length : -1,
    bigSha256: big ? crypto.createHash('sha256').update(big, 'latin1').digest('hex') : null,
    missing: { ok: missing.ok, error: missing.error ?? null },
    failing: { ok: failing.ok, error: failing.error ?? null },
    raw: rawGetServerVariable(info.ecb.address, 'HTTP_X_BIG', 8),
  };
}

module.exports = (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    try {
      const body = Buffer.concat(chunks);
      if (req.url.startsWith('/probe')) {
        const out = Buffer.from(JSON.stringify(probe(req)));
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': out.length });
        res.end(out);
        return;
      }
      res.writeHead(200, {
        'Content-Type': 'application/octet-stream',
        'Content-Length': body.length,
        'X-Body-Sha256': crypto.createHash('sha256').update(body).digest('hex'),
        'X-Thread': isMainThread ? 'main' : `worker-${threadId}`,
      });
      res.end(body);
    } catch (error) {
      const out = Buffer.from(String((error && error.stack) || error));
      res.writeHead(500, { 'Content-Type': 'text/plain', 'Content-Length': out.length });
      res.end(out);
    }
  });
};
