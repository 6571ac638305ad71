/**
 * The connection facts a socket exposes (P4), read lazily from server variables and cached, because most requests
 * never ask for most of them. `snapshot()` reads the rest just before DONE_WITH_SESSION, so a logger that asks for
 * `req.socket.remoteAddress` on 'finish' or 'close' (morgan, pino-http) still gets it from a dead ECB.
 */
import type { Ecb } from '../ecb/ecb.js';

const enum Key {
  RemoteAddress,
  RemotePort,
  LocalAddress,
  LocalPort,
  Encrypted,
}

export class ConnectionInfo {
  private readonly ecb: Ecb;
  private readonly values: (string | number | boolean | undefined)[] = [];
  private readonly known: boolean[] = [];

  constructor(ecb: Ecb) {
    this.ecb = ecb;
  }

  private get(key: Key, read: () => string | number | boolean | undefined): string | number | boolean | undefined {
    if (this.known[key]) return this.values[key];
    if (this.ecb.done) return undefined;
    const v = read();
    this.values[key] = v;
    this.known[key] = true;
    return v;
  }

  private variable(name: string): string | undefined {
    return this.ecb.getServerVariableString(name) ?? undefined;
  }

  private port(name: string): number | undefined {
    const v = this.variable(name);
    const n = v === undefined ? NaN : Number(v);
    return Number.isInteger(n) ? n : undefined;
  }

  get remoteAddress(): string | undefined {
    return this.get(Key.RemoteAddress, () => this.variable('REMOTE_ADDR')) as string | undefined;
  }
  get remotePort(): number | undefined {
    return this.get(Key.RemotePort, () => this.port('REMOTE_PORT')) as number | undefined;
  }
  get remoteFamily(): string | undefined {
    const a = this.remoteAddress;
    return a === undefined ? undefined : a.includes(':') ? 'IPv6' : 'IPv4';
  }
  get localAddress(): string | undefined {
    return this.get(Key.LocalAddress, () => this.variable('LOCAL_ADDR')) as string | undefined;
  }
  get localPort(): number | undefined {
    return this.get(Key.LocalPort, () => this.port('SERVER_PORT')) as number | undefined;
  }
  /** HTTPS=on, or SERVER_PORT_SECURE=1 when HTTPS is absent. */
  get encrypted(): boolean {
    return this.get(Key.Encrypted, () => {
      const https = this.variable('HTTPS');
      if (https !== undefined) return https.toLowerCase() === 'on';
      return this.variable('SERVER_PORT_SECURE') === '1';
    }) as boolean;
  }

  /** Read everything not read yet, while the ECB is still alive. */
  snapshot(): void {
    void this.remoteAddress;
    void this.remotePort;
    void this.localAddress;
    void this.localPort;
    void this.encrypted;
  }
}
