/**
 * What createExtension drives. A handler receives each request's Ecb on the JS thread that owns the extension and
 * answers with an HSE_STATUS_* value; SimpleHandler always answers HSE_STATUS_PENDING and finishes asynchronously.
 */
import type { Ecb } from '../ecb/ecb.js';

export interface IsapiHandler {
  /** Called once from GetExtensionVersion. May start work (worker threads, framework start-up). */
  start?(): void;
  /** One request. Must never throw; returns HSE_STATUS_*. */
  handle(ecb: Ecb): number;
  /**
   * Stop accepting requests and let those in flight finish. Called from TerminateExtension, which IIS makes
   * only after every outstanding request completed (ISAPI.md §4); the promise lets a host wait for the drain.
   */
  terminate(): Promise<void>;
  /**
   * Resolves once the handler can serve (ThreadPoolHandler: every worker has loaded the app), or rejects with the
   * start-up failure. Optional: a handler without it is ready once started.
   */
  ready?(): Promise<void>;
  /** Requests whose sessions have not ended yet. */
  readonly inFlight: number;
  /**
   * True when requests are served on the thread that receives them (SimpleHandler): only then can that thread's
   * health watchdog follow each ECB to its DONE_WITH_SESSION.
   */
  readonly servesOnThisThread?: boolean;
}
