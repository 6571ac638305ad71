/**
 * ISAPI allows one outstanding async operation per request (ISAPI.md §7.3, §11), and body reads and response
 * writes can both be wanted at once (an app that answers while the upload still streams). Every async ECB call of a
 * request goes through its IoQueue, which starts one operation at a time, in order.
 */
export type IoOperation = (release: () => void) => void;

export class IoQueue {
  private busy = false;
  private readonly waiting: IoOperation[] = [];
  private readonly idleWaiters: (() => void)[] = [];

  get idle(): boolean {
    return !this.busy && this.waiting.length === 0;
  }

  run(op: IoOperation): void {
    if (this.busy) {
      this.waiting.push(op);
      return;
    }
    this.start(op);
  }

  /** Call `fn` once nothing is outstanding or queued (at once if that is already so). */
  whenIdle(fn: () => void): void {
    if (this.idle) fn();
    else this.idleWaiters.push(fn);
  }

  private start(op: IoOperation): void {
    this.busy = true;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.busy = false;
      const next = this.waiting.shift();
      if (next) this.start(next);
      else for (const w of this.idleWaiters.splice(0)) w();
    };
    try {
      op(release);
    } catch (error) {
      release();
      throw error;
    }
  }
}
