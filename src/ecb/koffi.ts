/**
 * The single place that loads koffi. koffi.config() only works before the first koffi.load() in this thread
 * (koffi.md §3c "Concurrency limit"), so every module of src/ecb takes koffi from here, never from 'koffi'.
 *
 * max_async_calls bounds how many foreign (IIS) threads may be blocked in calls into JS at once; going above it
 * crashes the process (koffi.md pitfall 5). We default to koffi's maximum, 4096, and let an operator lower it with
 * ISAPI_HTTP_MAX_ASYNC_CALLS (docs/native-host.md says how a loader keeps its concurrency below it).
 */
import { createRequire } from 'node:module';
import { IsapiError, ErrorCodes } from '../errors.js';

type Koffi = typeof import('koffi');

export const MAX_ASYNC_CALLS_ENV = 'ISAPI_HTTP_MAX_ASYNC_CALLS';
export const DEFAULT_MAX_ASYNC_CALLS = 4096;

let instance: Koffi | null = null;

/** Parse the env override; a bad value is an operator error and must say so. */
export function maxAsyncCallsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[MAX_ASYNC_CALLS_ENV];
  if (raw === undefined || raw === '') return DEFAULT_MAX_ASYNC_CALLS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 4096) {
    throw new IsapiError(ErrorCodes.INVALID_ARGUMENT, `${MAX_ASYNC_CALLS_ENV} must be an integer from 1 to 4096, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** koffi, configured. Loaded lazily so that importing the package never loads a native module by itself. */
export function getKoffi(): Koffi {
  if (instance) return instance;
  let k: Koffi;
  try {
    // createRequire works from both the ESM and the CJS build; koffi itself is a CJS module.
    const req = createRequire(typeof __filename === 'string' ? __filename : process.cwd() + '/');
    k = req('koffi') as Koffi;
  } catch (cause) {
    throw new IsapiError(ErrorCodes.FFI_UNAVAILABLE, 'koffi could not be loaded; install it with its platform package (@koromix/koffi-<os>-<arch>)', { cause });
  }
  const wanted = maxAsyncCallsFromEnv();
  try {
    k.config({ ...k.config(), max_async_calls: wanted });
  } catch (cause) {
    // Another module of this thread loaded a library through koffi first; the limit it set stays in force.
    const current = k.config().max_async_calls;
    if (current !== wanted) {
      process.emitWarning(`isapi-http: koffi was configured before isapi-http loaded; max_async_calls stays ${current} (wanted ${wanted})`, {
        code: 'ISAPI_HTTP_KOFFI_CONFIG',
        detail: String(cause),
      });
    }
  }
  instance = k;
  return k;
}
