/** Shared by the C-host handler suites: the ISAPI rules every finished session must have kept. */
import type { CHostResult } from '../native/c-host.js';

/** Exactly one DONE per request, and no host rule broken (use-after-done, overlapping async I/O, headers or DONE twice). */
export function expectCleanSessions(results: CHostResult[]): void {
  for (const r of results) {
    expect(r.timedOut).toBe(false);
    expect(r.doneCount).toBe(1);
    expect(r.violations).toEqual({ useAfterDone: 0, asyncOverlap: 0, headersTwice: 0, doneTwice: 0 });
  }
}
