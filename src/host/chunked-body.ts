/**
 * An incremental, strict parser of HTTP/1.1 chunked framing (RFC 9112 §7.1) for the emulated IIS front end:
 * request bodies sent with `Transfer-Encoding: chunked` are de-chunked before the extension reads them
 * (cbTotalBytes 0xFFFFFFFF, ISAPI.md §5, §8; that IIS does this is inferred, ISAPI.md §14), and response bodies an
 * extension frames itself are checked so that the connection is kept only when the last chunk really went out.
 *
 * Not src/http/chunked-decoder.ts: that one serves the response path (HTTP/2 de-chunking), drops whatever follows
 * the last chunk and does not say where the message ended. On a connection the bytes after the last chunk are
 * the next pipelined request, so this parser reports how many input bytes it consumed; it also bounds the size
 * line, extensions and trailers, and refuses sizes beyond 2^48 instead of losing precision.
 *
 * Trailer fields are read and discarded: ISAPI has no way to hand request trailers to an extension.
 */
import { HttpParseError } from './http-request-parser.js';

const enum State {
  Size,
  SizeWs,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerLine,
  TrailerLf,
  FinalLf,
  Done,
}

const MAX_SIZE_DIGITS = 12;
const MAX_EXTENSION_BYTES = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  return -1;
}

function bad(message: string): HttpParseError {
  return new HttpParseError(400, 'HPE_INVALID_CHUNK_SIZE', `malformed chunked body: ${message}`);
}

export class ChunkedBodyParser {
  private state = State.Size;
  private size = 0;
  private digits = 0;
  private remaining = 0;
  private extBytes = 0;
  private trailerBytes = 0;
  /** Payload bytes seen so far. */
  payloadBytes = 0;

  /** True once the last chunk and the trailer section have been read. */
  get done(): boolean {
    return this.state === State.Done;
  }

  /**
   * Feed framed bytes. Payload slices go to `onData` (views into `input`). Returns how many bytes of `input` were
   * consumed: all of them until the message ends, then the bytes up to its end. Throws HttpParseError.
   */
  push(input: Buffer, onData: (payload: Buffer) => void): number {
    let i = 0;
    const n = input.length;
    while (i < n) {
      const byte = input[i] as number;
      switch (this.state) {
        case State.Size: {
          const v = hexValue(byte);
          if (v !== -1) {
            if (++this.digits > MAX_SIZE_DIGITS) throw bad('chunk size too large');
            this.size = this.size * 16 + v;
          } else if (this.digits === 0) {
            throw bad('a chunk size line must start with hex digits');
          } else if (byte === 0x20 || byte === 0x09) {
            this.state = State.SizeWs;
          } else if (byte === 0x3b /* ; */) {
            this.state = State.Ext;
          } else if (byte === 0x0d) {
            this.state = State.SizeLf;
          } else {
            throw bad('invalid character in a chunk size');
          }
          i++;
          break;
        }
        case State.SizeWs:
          if (byte === 0x3b) this.state = State.Ext;
          else if (byte === 0x0d) this.state = State.SizeLf;
          else if (byte !== 0x20 && byte !== 0x09) throw bad('invalid character after a chunk size');
          i++;
          break;
        case State.Ext:
          if (byte === 0x0d) this.state = State.SizeLf;
          else if (byte === 0x0a || (byte < 0x20 && byte !== 0x09) || byte === 0x7f) throw bad('invalid character in a chunk extension');
          else if (++this.extBytes > MAX_EXTENSION_BYTES) throw bad('chunk extensions too long');
          i++;
          break;
        case State.SizeLf:
          if (byte !== 0x0a) throw bad('a chunk size line must end in CRLF');
          this.remaining = this.size;
          this.size = 0;
          this.digits = 0;
          this.extBytes = 0;
          this.state = this.remaining === 0 ? State.TrailerStart : State.Data;
          i++;
          break;
        case State.Data: {
          const take = Math.min(this.remaining, n - i);
          onData(input.subarray(i, i + take));
          this.payloadBytes += take;
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) this.state = State.DataCr;
          break;
        }
        case State.DataCr:
          if (byte !== 0x0d) throw bad('chunk data must be followed by CRLF');
          this.state = State.DataLf;
          i++;
          break;
        case State.DataLf:
          if (byte !== 0x0a) throw bad('chunk data must be followed by CRLF');
          this.state = State.Size;
          i++;
          break;
        case State.TrailerStart:
          if (byte === 0x0d) this.state = State.FinalLf;
          else if (byte === 0x20 || byte === 0x09 || byte === 0x0a) throw bad('malformed trailer section');
          else {
            this.state = State.TrailerLine;
            this.trailerBytes++;
          }
          i++;
          break;
        case State.TrailerLine:
          if (byte === 0x0d) this.state = State.TrailerLf;
          else if (byte === 0x0a) throw bad('a trailer line must end in CRLF');
          else if (++this.trailerBytes > MAX_TRAILER_BYTES) throw bad('trailer section too large');
          i++;
          break;
        case State.TrailerLf:
          if (byte !== 0x0a) throw bad('a trailer line must end in CRLF');
          this.state = State.TrailerStart;
          i++;
          break;
        case State.FinalLf:
          if (byte !== 0x0a) throw bad('the chunked body must end in CRLF');
          this.state = State.Done;
          return i + 1;
        case State.Done:
          return i;
      }
    }
    return i;
  }
}
