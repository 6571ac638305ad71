/**
 * Run an app through the whole ISAPI path on MockEcb or on EmulatedHost (native memory + NativeEcb), and get the
 * host's record back once the session has ended and the streams have closed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HSE_STATUS_PENDING } from '../../src/ecb/constants.js';
import { MockEcb, type MockEcbOptions } from '../../src/ecb/mock-ecb.js';
import type { RecordedResponse } from '../../src/ecb/recorded-response.js';
import type { RequestDescription } from '../../src/ecb/request-model.js';
import { createExtension, type IsapiExtension } from '../../src/handlers/create-extension.js';
import { SimpleHandler, type SimpleHandlerOptions } from '../../src/handlers/simple-handler.js';
import { EmulatedHost, type EmulatedHostOptions } from '../../src/host/emulated-host.js';

export type App = (req: IncomingMessage, res: ServerResponse) => unknown;

export interface Ran extends RecordedResponse {
  readonly violations: readonly { readonly code: string; readonly message: string }[];
  readonly procResult: number | null;
}

export type FormName = 'mock' | 'emulated';
export const FORMS: readonly FormName[] = ['mock', 'emulated'];

/** Let pending close events run: the record is complete at DONE, the streams close a few ticks later. */
export const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

export class AppRunner {
  readonly extension: IsapiExtension;
  private host: EmulatedHost | null = null;

  constructor(app: App, options: SimpleHandlerOptions = {}) {
    this.extension = createExtension(new SimpleHandler(app, { onError: () => undefined, ...options }));
  }

  async run(form: FormName, request: RequestDescription, hostOptions: MockEcbOptions & EmulatedHostOptions = {}): Promise<Ran> {
    if (form === 'mock') {
      const ecb = await MockEcb.from(request, hostOptions);
      const status = this.extension.dispatch(ecb);
      ecb.record.procResult = status;
      if (status === HSE_STATUS_PENDING) await ecb.whenDone();
      await settle();
      return { ...ecb.record, violations: ecb.violations.map((v) => ({ code: v.code, message: v.message })) };
    }
    const host = hostOptions && Object.keys(hostOptions).length > 0 ? new EmulatedHost(hostOptions) : (this.host ??= new EmulatedHost());
    try {
      const r = await host.execute(request, this.extension.nativeEntryPoints().HttpExtensionProc);
      await settle();
      return r;
    } finally {
      if (host !== this.host) host.close();
    }
  }

  close(): void {
    this.host?.close();
    this.extension.dispose();
  }
}
