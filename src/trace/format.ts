/**
 * One record as a line of text for a terminal (the collector without --json):
 *
 *   2026-11-23T22:44:49.123Z INFO  req=17 thread=2 GET /orders 200 3.2ms
 *   2026-11-23T22:44:49.130Z ERROR req=18 thread=2 [app] GET /boom failed: boom
 *       Error: boom
 *           at ...
 *
 * Console lines show their text alone; direct stdout/stderr writes are marked (stdout) / (stderr); an error's
 * stack follows on indented lines.
 */
import type { TraceRecord } from './record.js';

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

export function formatRecord(record: TraceRecord): string {
  const time = new Date(record.time).toISOString();
  const level = String(record.level).toUpperCase().padEnd(5);
  const tags: string[] = [];
  if (record.requestId !== undefined) tags.push(`req=${record.requestId}`);
  if (record.worker !== undefined && record.worker !== 0) tags.push(`thread=${record.worker}`);
  if (record.kind !== undefined) tags.push(`[${record.kind}]`);
  if (record.source === 'stdout' || record.source === 'stderr') tags.push(`(${record.source})`);
  if (record.source === 'channel') tags.push('(trace)');
  let line = `${time} ${level} ${tags.length > 0 ? `${tags.join(' ')} ` : ''}${record.msg}`;
  const stack = record.err?.stack;
  if (stack && stack !== record.msg) line += `\n${indent(stack)}`;
  return line;
}
