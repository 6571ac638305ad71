/**
 * The three ECB forms behind one driver, so a behaviour table can run unchanged against each:
 * - mock:     MockEcb, pure JS;
 * - emulated: EmulatedHost (real native memory, koffi callbacks) + NativeEcb;
 * - c-host:   the C reference host calling from its own pthreads + NativeEcb.
 */
import type { Ecb } from '../../src/ecb/ecb.js';
import { HSE_STATUS_PENDING } from '../../src/ecb/constants.js';
import { MockEcb } from '../../src/ecb/mock-ecb.js';
import { NativeEcb } from '../../src/ecb/native-ecb.js';
import type { RecordedResponse } from '../../src/ecb/recorded-response.js';
import { RequestModel, type RequestDescription } from '../../src/ecb/request-model.js';
import { EmulatedHost } from '../../src/host/emulated-host.js';
import { CHost } from '../native/c-host.js';

export interface FormResult extends RecordedResponse {
  /** Host-side rule breaches (codes as in MockEcb). */
  readonly violations: readonly { readonly code: string }[];
}

/** An extension body under test: gets the request's Ecb, returns an HSE_STATUS_* value. */
export type Proc = (ecb: Ecb) => number;

export interface EcbForm {
  readonly name: 'mock' | 'emulated' | 'c-host';
  run(request: RequestDescription, proc: Proc): Promise<FormResult>;
  close(): void;
}

export function mockForm(): EcbForm {
  return {
    name: 'mock',
    async run(request, proc) {
      const ecb = await MockEcb.from(request);
      const status = proc(ecb);
      ecb.record.procResult = status;
      if (status === HSE_STATUS_PENDING) await ecb.whenDone();
      return { ...ecb.record, violations: ecb.violations };
    },
    close() {},
  };
}

export function emulatedForm(): EcbForm {
  const host = new EmulatedHost();
  return {
    name: 'emulated',
    run: (request, proc) => host.execute(request, (p) => proc(new NativeEcb(p))),
    close: () => host.close(),
  };
}

export function cHostForm(): EcbForm {
  const host = new CHost();
  return {
    name: 'c-host',
    async run(request, proc) {
      const r = await host.execute(new RequestModel(request), (p: bigint) => proc(new NativeEcb(p)));
      const violations = Object.entries(r.violations)
        .filter(([, n]) => (n as number) > 0)
        .map(([code]) => ({ code }));
      return { ...r, violations };
    },
    close: () => host.close(),
  };
}

/** Named so a test can title its blocks without building (and leaking) a host. */
export const ALL_FORMS: readonly (readonly [EcbForm['name'], () => EcbForm])[] = [
  ['mock', mockForm],
  ['emulated', emulatedForm],
  ['c-host', cHostForm],
];
