// Timing tests of the load-aware hashing: windows of this process's event loop, checked quiet.
import assert from 'node:assert/strict';

/**
 * Runs `window` (which ends by reading the function under test) until this process's event loop
 * was busy less than `below` over it, as measured here, at most five times: on a loaded machine a
 * GC or the runner's own work can make a quiet window look busy, and the function under test
 * would rightly see it so. Returns the reading of the first quiet window.
 */
export async function inQuietWindow<T>(below: number, window: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const start = performance.eventLoopUtilization();
    const reading = await window();
    const busy = performance.eventLoopUtilization(start).utilization;
    if (busy < below) return reading;
    assert.ok(attempt < 5, `the event loop was busy ${busy} over five quiet windows`);
  }
}
