/**
 * Trace levels. The numbers are pino's (debug 20 … fatal 60), so a record's level orders the same way in any
 * pino-aware tool; records carry the name, which reads better in a terminal and in a file.
 */
import { invalidArgument } from '../errors.js';

export const TRACE_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'] as const;
export type TraceLevel = (typeof TRACE_LEVELS)[number];

export const LEVEL_VALUE: Readonly<Record<TraceLevel, number>> = { debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

/** The numeric rank of a level name; 0 for anything that is not one (such a record is never filtered out). */
export function levelValue(level: string): number {
  return (LEVEL_VALUE as Record<string, number | undefined>)[level] ?? 0;
}

/** A level given by a user (an option, a CLI flag): case-insensitive, `warning` accepted for `warn`. */
export function parseLevel(value: string): TraceLevel {
  const v = String(value).trim().toLowerCase();
  const name = v === 'warning' ? 'warn' : v;
  if ((TRACE_LEVELS as readonly string[]).includes(name)) return name as TraceLevel;
  throw invalidArgument(`unknown trace level ${JSON.stringify(value)}; use one of ${TRACE_LEVELS.join(', ')}`);
}
