/**
 * What a worker has done with each request it holds, in memory the main thread can read after the worker died.
 *
 * When a worker dies mid-request (uncaught exception, process.exit(), OOM, terminate()), the main thread must
 * still end that request's session exactly once and never touch an ECB twice (issue: crash isolation). It can
 * only decide how from what the worker did *before* dying, so the worker sets each flag before the ECB call it
 * announces: a flag that is set means "maybe done", and the main thread then takes the cautious branch.
 *
 * One Int32 per slot in a SharedArrayBuffer, written with Atomics so the main thread sees it after the worker's death.
 */
export const SLOT_ASSIGNED = 1;
/** SEND_RESPONSE_HEADER_EX (or a call that sends headers) was started: a 500 can no longer be sent. */
export const SLOT_HEADERS = 2;
/** DONE_WITH_SESSION was started: the ECB must never be touched again. */
export const SLOT_DONE = 4;
/** An async operation is outstanding: its completion must be waited for before DONE (ISAPI.md §9). */
export const SLOT_IO = 8;

export class SlotTable {
  readonly buffer: SharedArrayBuffer;
  private readonly cells: Int32Array;
  private readonly free: number[] = [];

  constructor(sizeOrBuffer: number | SharedArrayBuffer) {
    this.buffer = typeof sizeOrBuffer === 'number' ? new SharedArrayBuffer(sizeOrBuffer * 4) : sizeOrBuffer;
    this.cells = new Int32Array(this.buffer);
    for (let i = this.cells.length - 1; i >= 0; i--) this.free.push(i);
  }

  get size(): number {
    return this.cells.length;
  }

  /** Main thread: take a free slot, or -1. */
  acquire(): number {
    const slot = this.free.pop();
    if (slot === undefined) return -1;
    Atomics.store(this.cells, slot, SLOT_ASSIGNED);
    return slot;
  }

  /** Main thread: the request in `slot` has ended. */
  release(slot: number): void {
    Atomics.store(this.cells, slot, 0);
    this.free.push(slot);
  }

  /** Worker: announce a step before taking it. */
  mark(slot: number, flag: number): void {
    Atomics.or(this.cells, slot, flag);
  }

  /** Worker: a step is over (used for SLOT_IO). */
  clear(slot: number, flag: number): void {
    Atomics.and(this.cells, slot, ~flag);
  }

  read(slot: number): number {
    return Atomics.load(this.cells, slot);
  }
}
