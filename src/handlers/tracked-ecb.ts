/**
 * A NativeEcb, used by a worker thread, that announces each step in its SlotTable cell *before* taking it
 * (slot-state.ts), so the main thread can finish the request correctly if the worker dies.
 */
import { NativeEcb } from '../ecb/native-ecb.js';
import type { ExecUrlOptions, ExecUrlStatus, IoCallback, SendHeadersOptions, TransmitFileOptions, VectorSendOptions } from '../ecb/ecb.js';
import { HSE_IO_SEND_HEADERS } from '../ecb/constants.js';
import type { IsapiError } from '../errors.js';
import { SLOT_DONE, SLOT_HEADERS, SLOT_IO, type SlotTable } from './slot-state.js';

export class TrackedEcb extends NativeEcb {
  private readonly table: SlotTable;
  private readonly slot: number;

  constructor(address: bigint, table: SlotTable, slot: number) {
    super(address);
    this.table = table;
    this.slot = slot;
  }

  /** Mark an async operation for its duration: set before it starts, cleared at its completion or a refusal. */
  private io<A extends unknown[]>(callback: (...args: A) => void, start: (wrapped: (...args: A) => void) => void): void {
    this.table.mark(this.slot, SLOT_IO);
    try {
      start((...args: A) => {
        this.table.clear(this.slot, SLOT_IO);
        callback(...args);
      });
    } catch (error) {
      this.table.clear(this.slot, SLOT_IO);
      throw error;
    }
  }

  override sendResponseHeaders(options: SendHeadersOptions): void {
    this.table.mark(this.slot, SLOT_HEADERS);
    super.sendResponseHeaders(options);
  }

  override sendUrlRedirect(url: string): void {
    this.table.mark(this.slot, SLOT_HEADERS);
    super.sendUrlRedirect(url);
  }

  override doneWithSession(status?: number): void {
    this.table.mark(this.slot, SLOT_DONE);
    super.doneWithSession(status);
  }

  override readClientAsync(target: Buffer, callback: IoCallback): void {
    this.io(callback, (cb) => super.readClientAsync(target, cb));
  }

  override writeClientAsync(data: Buffer, callback: IoCallback, flags?: number): void {
    this.io(callback, (cb) => super.writeClientAsync(data, cb, flags));
  }

  override transmitFile(options: TransmitFileOptions, callback: IoCallback): void {
    if ((options.flags ?? 0) & HSE_IO_SEND_HEADERS) this.table.mark(this.slot, SLOT_HEADERS);
    this.io(callback, (cb) => super.transmitFile(options, cb));
  }

  override vectorSend(options: VectorSendOptions, callback?: IoCallback): void {
    if (options.status !== undefined && options.headers !== undefined) this.table.mark(this.slot, SLOT_HEADERS);
    if (callback) this.io(callback, (cb) => super.vectorSend(options, cb));
    else super.vectorSend(options);
  }

  override execUrl(options: ExecUrlOptions, callback: (error: IsapiError | null, status: ExecUrlStatus | null) => void): void {
    this.table.mark(this.slot, SLOT_HEADERS);
    this.io(callback, (cb) => super.execUrl(options, cb));
  }
}
