import { parseAllRaw, rawFromAllHttp } from '../../src/http/raw-headers.js';
import { mountPathOf, stripMountPath } from '../../src/http/request-url.js';

describe('ALL_RAW parsing', () => {
  test('keeps wire order, case and duplicates; tolerates CRLF and LF; trims values', () => {
    expect(parseAllRaw('Host: a\r\nX-B:  2 \nx-a: 1\r\nSet-Cookie: c=1\r\nSet-Cookie: d=2\r\n')).toEqual([
      'Host', 'a', 'X-B', '2', 'x-a', '1', 'Set-Cookie', 'c=1', 'Set-Cookie', 'd=2',
    ]);
  });
  test('joins obs-fold continuation lines and skips lines without a name', () => {
    expect(parseAllRaw('X-Long: a\r\n  b\r\n: nameless\r\n\r\n')).toEqual(['X-Long', 'a b']);
  });
});

describe('mount path', () => {
  test.each([
    ['/LM/W3SVC/1/ROOT', ''],
    ['/LM/W3SVC/1/ROOT/', ''],
    ['/LM/W3SVC/1/ROOT/shop', '/shop'],
    ['/LM/W3SVC/2/root/Shop/Admin/', '/Shop/Admin'],
    [null, ''],
  ])('APPL_MD_PATH %s is mounted at %j', (appl, mount) => {
    expect(mountPathOf(appl)).toBe(mount);
  });
  test.each([
    ['/shop/cart?x=1', '/shop', '/cart?x=1'],
    ['/SHOP/cart', '/shop', '/cart'],
    ['/shop', '/shop', '/'],
    ['/shop?q', '/shop', '/?q'],
    ['/shopping', '/shop', '/shopping'],
    ['/other', '/shop', '/other'],
    ['/x', '', '/x'],
  ])('%s under %j is routed as %s', (url, mount, expected) => {
    expect(stripMountPath(url, mount)).toBe(expected);
  });
});

describe('ALL_HTTP fallback', () => {
  test('rebuilds names, adds CONTENT_TYPE and CONTENT_LENGTH that CGI keeps apart', () => {
    expect(rawFromAllHttp('HTTP_HOST:h\r\nHTTP_X_MY_HEADER:v\r\nHTTP_ACCEPT:*/*\r\n', 'text/plain', '5')).toEqual([
      'Host', 'h', 'X-My-Header', 'v', 'Accept', '*/*', 'Content-Type', 'text/plain', 'Content-Length', '5',
    ]);
  });
});
