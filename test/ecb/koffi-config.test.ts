import { DEFAULT_MAX_ASYNC_CALLS, getKoffi, MAX_ASYNC_CALLS_ENV, maxAsyncCallsFromEnv } from '../../src/ecb/koffi.js';
import { ErrorCodes } from '../../src/errors.js';

test('koffi is configured with max_async_calls before its first load: 4096 by default', () => {
  expect(DEFAULT_MAX_ASYNC_CALLS).toBe(4096);
  expect(getKoffi().config().max_async_calls).toBe(process.env[MAX_ASYNC_CALLS_ENV] ? Number(process.env[MAX_ASYNC_CALLS_ENV]) : 4096);
});

test.each([
  [undefined, 4096],
  ['', 4096],
  ['64', 64],
  ['4096', 4096],
])('%s=%j gives %i', (raw, expected) => {
  expect(maxAsyncCallsFromEnv(raw === undefined ? {} : { [MAX_ASYNC_CALLS_ENV]: raw })).toBe(expected);
});

test.each(['0', '4097', '12.5', 'lots', '-1'])('a bad value %j is an operator error that says what is allowed', (raw) => {
  expect(() => maxAsyncCallsFromEnv({ [MAX_ASYNC_CALLS_ENV]: raw })).toThrow(
    expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining('from 1 to 4096') }),
  );
});
