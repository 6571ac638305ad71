/**
 * The channel's side of one connected collector. Each record is first `admit`ted, then `send`; what the collector
 * has not read yet waits in the socket's own buffer, up to `maxBytes`. Past that the record is dropped for this collector
 * only, and counted: a slow or stalled collector costs one length check per record and never delays a request.
 * When the collector catches up, it first gets a notice saying how many records it missed.
 */
import type { Socket } from 'node:net';
import { makeRecord } from './record.js';

export class CollectorLink {
  /** Records dropped for this collector since it connected. */
  dropped = 0;
  private missed = 0;
  private readonly socket: Socket;
  private readonly maxBytes: number;

  constructor(socket: Socket, maxBytes: number, onClose: (link: CollectorLink) => void) {
    this.socket = socket;
    this.maxBytes = maxBytes;
    socket.unref();
    // A collector only reads; anything it sends is discarded, and its errors just end the link.
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    socket.once('close', () => onClose(this));
  }

  get open(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }

  /** Write a block (the hello and the ring) regardless of the limit: it is bounded by the ring's size. */
  sendAll(text: string): void {
    if (this.open) this.socket.write(text);
  }

  /**
   * Is there room for one more record? If not, the record is dropped for this collector and counted. Called before
   * the record is serialised, so that a stalled collector costs a length check, not a JSON.stringify.
   */
  admit(): boolean {
    if (!this.open) return false;
    if (this.socket.writableLength <= this.maxBytes) return true;
    this.dropped++;
    this.missed++;
    return false;
  }

  /** Write one serialised record (a JSON line) that admit() made room for. */
  send(line: string): void {
    if (this.missed > 0) {
      const n = this.missed;
      this.missed = 0;
      const notice = makeRecord('warn', `trace: ${n} record(s) dropped for this collector, which read too slowly`, { source: 'channel', dropped: n });
      this.socket.write(`${JSON.stringify(notice)}\n`);
    }
    this.socket.write(line);
  }

  /** End the link: what is buffered goes out if the collector reads it within `graceMs`, else it is cut off. */
  end(graceMs = 200): void {
    if (this.socket.destroyed) return;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), graceMs).unref();
  }
}
