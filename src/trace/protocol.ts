/**
 * The wire between a channel and a collector: UTF-8 JSON lines, channel to collector only.
 *
 *   {"$":"hello","v":1,"name":"DefaultAppPool","pid":4242,"ring":N}   first line
 *   N ring records (oldest first), then live records as they are written     one TraceRecord per line
 *   {"$":"refused","reason":"..."}                                           instead of the hello, then the end
 *
 * Lines with a `$` field are control lines; every other line is a record, so `nc -U <socket> | jq` works too.
 * A collector never sends anything; filters are applied on its side, so the channel's cost per record does not
 * depend on what collectors ask for.
 */
export const PROTOCOL_VERSION = 1;

export interface HelloLine {
  readonly $: 'hello';
  readonly v: number;
  readonly name: string;
  readonly pid: number;
  /** How many ring records follow before the live ones. */
  readonly ring: number;
}

export interface RefusedLine {
  readonly $: 'refused';
  readonly reason: string;
}

export type ControlLine = HelloLine | RefusedLine;

export function controlLine(line: ControlLine): string {
  return `${JSON.stringify(line)}\n`;
}
