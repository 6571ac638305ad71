/**
 * A fixed-size ring of the most recent items: pushing past the capacity overwrites the oldest. O(1) per push and
 * no allocation after construction, so keeping the recent trace costs the same under any load.
 */
import { invalidArgument } from '../errors.js';

export class Ring<T> {
  readonly capacity: number;
  private readonly items: (T | undefined)[];
  private next = 0;
  private count = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw invalidArgument(`a trace ring needs a positive integer size, got ${String(capacity)}`);
    this.capacity = capacity;
    this.items = new Array<T | undefined>(capacity).fill(undefined);
  }

  get size(): number {
    return this.count;
  }

  push(item: T): void {
    this.items[this.next] = item;
    this.next = this.next + 1 === this.capacity ? 0 : this.next + 1;
    if (this.count < this.capacity) this.count++;
  }

  /** The items, oldest first. */
  toArray(): T[] {
    const out: T[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) out.push(this.items[(start + i) % this.capacity] as T);
    return out;
  }

  clear(): void {
    this.items.fill(undefined);
    this.next = 0;
    this.count = 0;
  }
}
