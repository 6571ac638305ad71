/**
 * The request body of one request on an emulated IIS connection, as the async iterable the RequestModel's
 * BodySource pulls from. It is the on-demand link between the extension and the TCP socket:
 *
 * - the extension's read-ahead (ISAPI.md §5) and each async ReadClient (HSE_REQ_ASYNC_READ_CLIENT, §8) end up in
 *   `next()`; only a waiting `next()` asks the connection to read (`demand`), and a chunk that arrives with no one
 *   waiting is queued and the connection pauses the socket: TCP backpressure reaches the client;
 * - the first pull is when `Expect: 100-continue` gets its interim answer (`firstPull`, host-connection.ts);
 * - a client that goes away mid-body fails the waiting read: the host completes it with cbIO 0 and
 *   ERROR_NETNAME_DELETED (emulated-host.ts), which the extension reports as an aborted request.
 */

export interface BodyFlow {
  /** A reader is waiting and nothing is queued: read from the socket. */
  demand(): void;
  /** Called once, on the first pull. */
  firstPull(): void;
}

export class RequestBody implements AsyncIterable<Buffer> {
  private readonly flow: BodyFlow;
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  private waiter: { resolve(r: IteratorResult<Buffer>): void; reject(e: Error): void } | null = null;
  private ended = false;
  private failure: Error | null = null;
  private pulled = false;

  constructor(flow: BodyFlow) {
    this.flow = flow;
  }

  /** True while a reader waits for bytes. */
  get wanted(): boolean {
    return this.waiter !== null;
  }

  /** Bytes received but not yet pulled. */
  get queued(): number {
    return this.queuedBytes;
  }

  /** True once the first pull happened. */
  get started(): boolean {
    return this.pulled;
  }

  /** True once end() or fail() was called. */
  get closed(): boolean {
    return this.ended || this.failure !== null;
  }

  push(chunk: Buffer): void {
    if (this.closed || chunk.length === 0) return;
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = null;
      waiter.resolve({ value: chunk, done: false });
      return;
    }
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
  }

  /** The whole body has been received. */
  end(): void {
    if (this.closed) return;
    this.ended = true;
    if (this.waiter && this.queue.length === 0) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter.resolve({ value: undefined, done: true });
    }
  }

  /** The body will not complete (client gone, malformed framing): the waiting and every later read fail. */
  fail(error: Error): void {
    if (this.closed) return;
    this.failure = error;
    this.queue.length = 0;
    this.queuedBytes = 0;
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter.reject(error);
    }
  }

  next(): Promise<IteratorResult<Buffer>> {
    if (!this.pulled) {
      this.pulled = true;
      this.flow.firstPull();
    }
    const head = this.queue.shift();
    if (head) {
      this.queuedBytes -= head.length;
      return Promise.resolve({ value: head, done: false });
    }
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    if (this.waiter) return Promise.reject(new Error('RequestBody: one read at a time'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.flow.demand();
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return { next: () => this.next() };
  }
}
