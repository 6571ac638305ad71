/**
 * Strips HTTP/1.1 chunk framing from a byte stream, incrementally. Used only when an app forces
 * `Transfer-Encoding: chunked` on an HTTP/2+ request: Node then frames the body, but http.sys frames HTTP/2
 * streams itself (framing.ts). Trailers after the last chunk are discarded, as they cannot travel in pszHeader.
 * Binary-safe: works on bytes, never on strings (P10: serverless-http's string split corrupted bodies).
 */
const enum State {
  Size,
  SizeLineEnd,
  Data,
  DataCr,
  DataLf,
  Trailer,
  Done,
}

export class ChunkedDecoder {
  private state = State.Size;
  private remaining = 0;
  private sizeText = '';
  private trailerLine = 0;

  get done(): boolean {
    return this.state === State.Done;
  }

  /** Feed framed bytes; returns the payload bytes they carry. Throws on malformed framing. */
  push(input: Buffer): Buffer {
    const out: Buffer[] = [];
    let i = 0;
    while (i < input.length && this.state !== State.Done) {
      const byte = input[i] as number;
      switch (this.state) {
        case State.Size:
          if (byte === 0x0d) {
            this.state = State.SizeLineEnd;
          } else if (byte === 0x0a) {
            throw new Error('malformed chunk size line: LF without CR');
          } else {
            this.sizeText += String.fromCharCode(byte);
            if (this.sizeText.length > 64) throw new Error('chunk size line too long');
          }
          i++;
          break;
        case State.SizeLineEnd: {
          if (byte !== 0x0a) throw new Error('malformed chunk size line');
          const hex = (this.sizeText.split(';')[0] ?? '').trim();
          if (!/^[0-9a-fA-F]+$/.test(hex)) throw new Error(`malformed chunk size ${JSON.stringify(hex)}`);
          this.remaining = Number.parseInt(hex, 16);
          this.sizeText = '';
          this.state = this.remaining === 0 ? State.Trailer : State.Data;
          this.trailerLine = 0;
          i++;
          break;
        }
        case State.Data: {
          const take = Math.min(this.remaining, input.length - i);
          out.push(input.subarray(i, i + take));
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) this.state = State.DataCr;
          break;
        }
        case State.DataCr:
          if (byte !== 0x0d) throw new Error('missing CR after chunk data');
          this.state = State.DataLf;
          i++;
          break;
        case State.DataLf:
          if (byte !== 0x0a) throw new Error('missing LF after chunk data');
          this.state = State.Size;
          i++;
          break;
        case State.Trailer:
          // Trailer lines end with CRLF; an empty line (CRLF at column 0) ends the message.
          if (byte === 0x0a) {
            if (this.trailerLine <= 1) this.state = State.Done;
            this.trailerLine = 0;
          } else {
            this.trailerLine++;
          }
          i++;
          break;
        default:
          i++;
      }
    }
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
  }
}
