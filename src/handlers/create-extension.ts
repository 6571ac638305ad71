/**
 * createExtension: the ISAPI extension object whose three methods are the DLL's exports, over raw addresses
 * (DESIGN.md "Public API"). An extension module's default export is one of these; a loader DLL calls the
 * function pointers from `nativeEntryPoints()`.
 */
import type { Ecb } from '../ecb/ecb.js';
import { HSE_STATUS_ERROR, HSE_STATUS_PENDING } from '../ecb/constants.js';
import { registerEntryPoints, writeVersionInfo, type NativeEntryPoints } from '../ecb/entry-points.js';
import { completionRoutine } from '../ecb/io-completion.js';
import { NativeEcb } from '../ecb/native-ecb.js';
import { invalidArgument } from '../errors.js';
import type { IsapiHandler } from './handler.js';
import { enterHostMode, exitHostMode } from './host-mode.js';
import { Watchdog, WatchedEcb, type WatchdogOptions } from './watchdog.js';
import { attachTrace, startHostTrace, type ExtensionTraceOption, type HostTrace } from '../trace/host-trace.js';

export interface ExtensionOptions {
  /** HSE_VERSION_INFO's description (ASCII, at most 255 characters). */
  readonly description?: string;
  /** Where the extension reports its own failures. Default: console.error. */
  readonly onError?: (error: unknown) => void;
  /**
   * The health watchdog (watchdog.ts): on by default in host mode, for handlers that serve on this thread.
   * `false` turns it off; `true` or options start it at once (tests, custom hosts).
   */
  readonly watchdog?: boolean | WatchdogOptions;
  /**
   * Host mode's trace channel (src/trace): the console, stdout/stderr and the library's diagnostics go to the pipe
   * `isapi-http trace` follows, instead of nowhere. On by default in host mode, and only there; `false` turns it
   * off; a TraceChannel is used as it is; options shape the one host mode creates (name, ringSize, file, ...).
   */
  readonly trace?: ExtensionTraceOption;
}

export interface IsapiExtension {
  GetExtensionVersion(pVer: bigint): boolean;
  HttpExtensionProc(pEcb: bigint): number;
  TerminateExtension(dwFlags: number): boolean;
  /** Native function pointers with the exact WINAPI prototypes: what a loader calls. Registered once. */
  nativeEntryPoints(): NativeEntryPoints;
  /** Run one request on any Ecb (MockEcb in tests, inject()). Returns HSE_STATUS_*. */
  dispatch(ecb: Ecb): number;
  /** Resolves when TerminateExtension's drain is complete. */
  readonly terminated: Promise<void>;
  readonly handler: IsapiHandler;
  /** Release the native entry points (after the host has stopped calling them). */
  dispose(): void;
}

export const DEFAULT_DESCRIPTION = 'isapi-http: Node.js via ISAPI';

export function createExtension(handler: IsapiHandler, options: ExtensionOptions = {}): IsapiExtension {
  if (handler === null || typeof handler !== 'object' || typeof handler.handle !== 'function' || typeof handler.terminate !== 'function') {
    throw invalidArgument('createExtension needs a handler such as new SimpleHandler(app) or new ThreadPoolHandler(url)');
  }
  let hostTrace: HostTrace | null = null;
  // In host mode the trace gets every report too; console.error only when there is neither a trace nor onError.
  const reportAs =
    (kind: string) =>
    (error: unknown): void => {
      hostTrace?.channel.error(error, { kind });
      if (options.onError) options.onError(error);
      else if (!hostTrace) console.error('isapi-http:', error);
    };
  const report = reportAs('extension');
  const startTrace = (): void => {
    try {
      hostTrace = startHostTrace(options.trace);
      if (hostTrace) attachTrace(handler, hostTrace.channel);
    } catch (error) {
      hostTrace = null;
      report(error);
    }
  };
  const stopTrace = (): void => {
    hostTrace?.stop();
    hostTrace = null;
  };
  // Register this thread's IO completion routine now, outside any koffi callback (see io-completion.ts).
  completionRoutine();
  let native: ReturnType<typeof registerEntryPoints> | null = null;
  let terminating: Promise<void> | null = null;
  let started = false;
  let hosted = false;
  let watchdog: Watchdog | null = null;
  const watchdogOptions: WatchdogOptions | null =
    options.watchdog === false ? null : typeof options.watchdog === 'object' ? options.watchdog : {};
  const startWatchdog = (): void => {
    if (watchdog || !watchdogOptions || !handler.servesOnThisThread) return;
    watchdog = new Watchdog({ onReport: (reason) => report(new Error(reason)), ...watchdogOptions });
  };
  const stopWatchdog = (): void => {
    void watchdog?.stop();
    watchdog = null;
  };
  if (options.watchdog === true || typeof options.watchdog === 'object') startWatchdog();

  const dispatch = (ecb: Ecb): number => {
    try {
      if (!started) {
        started = true;
        handler.start?.();
      }
      return handler.handle(ecb);
    } catch (error) {
      report(error);
      // If the session already ended, IIS must not end it again: PENDING says "DONE was (or will be) called".
      // Otherwise HSE_STATUS_ERROR lets IIS end the session itself (ISAPI.md §4).
      return ecb.done ? HSE_STATUS_PENDING : HSE_STATUS_ERROR;
    }
  };

  const extension: IsapiExtension = {
    handler,
    get terminated() {
      return terminating ?? Promise.resolve();
    },
    GetExtensionVersion(pVer) {
      try {
        writeVersionInfo(pVer, options.description ?? DEFAULT_DESCRIPTION);
        if (!started) {
          started = true;
          handler.start?.();
        }
        return true;
      } catch (error) {
        report(error);
        return false;
      }
    },
    HttpExtensionProc(pEcb) {
      let ecb: NativeEcb;
      try {
        ecb = watchdog ? new WatchedEcb(pEcb, watchdog.state) : new NativeEcb(pEcb);
      } catch (error) {
        report(error);
        return HSE_STATUS_ERROR;
      }
      return dispatch(ecb);
    },
    TerminateExtension(dwFlags) {
      // HSE_TERM_ADVISORY_UNLOAD may be vetoed, HSE_TERM_MUST_UNLOAD may not; we always agree and drain
      // (IIS calls this only after outstanding requests completed, ISAPI.md §4). dwFlags is therefore unused.
      void dwFlags;
      terminating ??= handler.terminate().catch((error: unknown) => report(error));
      return true;
    },
    nativeEntryPoints() {
      // Called through these pointers, the extension is under a native host: host mode (host-mode.ts) starts with
      // GetExtensionVersion, the first call IIS makes, and ends once TerminateExtension has drained.
      native ??= registerEntryPoints({
        GetExtensionVersion: (p) => {
          // The trace first, so that the handler's start (worker threads, the app's own start-up) is traced.
          if (!hosted && !hostTrace) startTrace();
          const ok = extension.GetExtensionVersion(p);
          if (ok && !hosted) {
            hosted = true;
            enterHostMode(reportAs('uncaught'));
            startWatchdog();
          } else if (!hosted) stopTrace();
          return ok;
        },
        HttpExtensionProc: (p) => extension.HttpExtensionProc(p),
        TerminateExtension: (f) => {
          const ok = extension.TerminateExtension(f);
          if (hosted) {
            hosted = false;
            void extension.terminated.then(() => {
              stopWatchdog();
              exitHostMode();
              stopTrace();
            });
          }
          return ok;
        },
      });
      return native.pointers;
    },
    dispatch,
    dispose() {
      stopWatchdog();
      if (hosted) {
        hosted = false;
        exitHostMode();
      }
      stopTrace();
      native?.unregister();
      native = null;
    },
  };
  return extension;
}
