// Every timeout of the suite, scaled by one setting so the suite passes on a busy machine.
import { availableParallelism, loadavg } from 'node:os';

/**
 * TEST_TIMEOUT_SCALE multiplies every timeout of the suite (a positive number). Unset, it is 2
 * (3 with CI=true), times the run queue per core when the machine is busier than its cores:
 * timeouts are safety nets against hangs, never measurements, so a generous scale costs nothing
 * on a healthy run and only delays the report of a real hang.
 */
function timeoutScale(): number {
  const raw = process.env.TEST_TIMEOUT_SCALE;
  if (raw !== undefined && raw !== '') {
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0) {
      throw new Error(`TEST_TIMEOUT_SCALE must be a positive number, not ${JSON.stringify(raw)}`);
    }
    return value;
  }
  const base = process.env.CI === 'true' ? 3 : 2;
  const busy = (loadavg()[0] ?? 0) / availableParallelism();
  return base * Math.min(4, Math.max(1, busy));
}

export const TIMEOUT_SCALE = timeoutScale();

/** `ms` (what the wait takes on an idle machine, with a margin) scaled by TEST_TIMEOUT_SCALE. */
export function scaled(ms: number): number {
  return Math.round(ms * TIMEOUT_SCALE);
}

/** The timeout of one test that starts processes or servers. */
export const TEST_TIMEOUT_MS = scaled(60_000);
/** How long a subprocess (a CLI command, a server's stop) may take before it counts as hung. */
export const PROCESS_TIMEOUT_MS = scaled(30_000);
