/**
 * SimpleHandler: runs the app on the thread that receives the requests (the main thread). Many requests are in
 * flight at once through async I/O; none of them blocks the thread, because every ECB read and write is async.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Ecb } from '../ecb/ecb.js';
import { HSE_STATUS_PENDING } from '../ecb/constants.js';
import { invalidArgument } from '../errors.js';
import { Exchange, type ExchangeOptions, type RequestListener } from '../http/exchange.js';
import type { IsapiHandler } from './handler.js';
import { respondDirect } from './respond.js';

export type SimpleHandlerOptions = ExchangeOptions;

export class SimpleHandler implements IsapiHandler {
  private readonly listener: RequestListener;
  private readonly options: SimpleHandlerOptions;
  private readonly active = new Set<Exchange>();
  private terminating = false;
  private drained: (() => void) | null = null;

  constructor(app: RequestListener | ((req: IncomingMessage, res: ServerResponse) => unknown), options: SimpleHandlerOptions = {}) {
    if (typeof app !== 'function') {
      throw invalidArgument(`SimpleHandler needs a request listener (req, res) => void; got ${app === null ? 'null' : typeof app}`);
    }
    this.listener = app;
    this.options = options;
  }

  get inFlight(): number {
    return this.active.size;
  }

  handle(ecb: Ecb): number {
    if (this.terminating) {
      respondDirect(ecb, 503, 'Service Unavailable', 'Retry-After: 1\r\n');
      return HSE_STATUS_PENDING;
    }
    const exchange = new Exchange(ecb, this.options);
    this.active.add(exchange);
    void exchange.settled.then(() => {
      this.active.delete(exchange);
      if (this.active.size === 0 && this.drained) this.drained();
    });
    exchange.run(this.listener);
    return HSE_STATUS_PENDING;
  }

  /** Stop accepting (new requests get 503) and resolve when the requests in flight have ended. */
  terminate(): Promise<void> {
    this.terminating = true;
    if (this.active.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drained = resolve;
    });
  }
}
