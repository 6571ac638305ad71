/**
 * Shared memory between the thread that serves requests and its watchdog thread (watchdog.ts):
 * - a heartbeat (milliseconds since the epoch) and the heap in use, both written by the served thread;
 * - a table of pending ECB addresses, so the watchdog can report on an ECB that is still pending.
 *
 * A cell's state makes the hand-over safe: 0 empty, 1 pending, 2 borrowed by the watchdog. The served thread ends a
 * session only after taking its cell from 1 back to 0; if the watchdog holds it (2), it waits the few microseconds
 * until the watchdog's SSF call returns. So the watchdog never calls into an ECB whose session has ended.
 */
const HEADER = 2; // [0] heartbeat ms, [1] heap bytes

export class WatchdogState {
  readonly buffer: SharedArrayBuffer;
  private readonly header: Float64Array;
  private readonly states: Int32Array;
  private readonly addresses: BigInt64Array;
  private readonly capacity: number;

  constructor(capacityOrBuffer: number | SharedArrayBuffer) {
    const capacity = typeof capacityOrBuffer === 'number' ? capacityOrBuffer : (capacityOrBuffer.byteLength - HEADER * 8) / 12;
    this.capacity = capacity;
    this.buffer = typeof capacityOrBuffer === 'number' ? new SharedArrayBuffer(HEADER * 8 + capacity * 8 + capacity * 4) : capacityOrBuffer;
    this.header = new Float64Array(this.buffer, 0, HEADER);
    this.addresses = new BigInt64Array(this.buffer, HEADER * 8, capacity);
    this.states = new Int32Array(this.buffer, HEADER * 8 + capacity * 8, capacity);
  }

  beat(now: number, heapBytes: number): void {
    this.header[0] = now;
    this.header[1] = heapBytes;
  }

  get lastBeat(): number {
    return this.header[0] as number;
  }

  get heapBytes(): number {
    return this.header[1] as number;
  }

  /** Served thread: record a pending ECB; returns its cell, or -1 when the table is full (then it is not watched). */
  add(address: bigint): number {
    for (let i = 0; i < this.capacity; i++) {
      if (Atomics.load(this.states, i) !== 0) continue;
      this.addresses[i] = address;
      if (Atomics.compareExchange(this.states, i, 0, 1) === 0) return i;
    }
    return -1;
  }

  /** Served thread: the session is about to end; wait out a watchdog call in progress on it. */
  remove(cell: number): void {
    if (cell < 0) return;
    while (Atomics.compareExchange(this.states, cell, 1, 0) === 2) Atomics.wait(this.states, cell, 2, 50);
  }

  /** Watchdog: borrow any pending ECB; returns [cell, address] or null. */
  borrow(): [number, bigint] | null {
    for (let i = 0; i < this.capacity; i++) {
      if (Atomics.compareExchange(this.states, i, 1, 2) === 1) return [i, this.addresses[i] as bigint];
    }
    return null;
  }

  giveBack(cell: number): void {
    Atomics.store(this.states, cell, 1);
    Atomics.notify(this.states, cell);
  }
}
