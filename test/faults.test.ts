// A short subset of the fault suite (bench/faults, `npm run faults`) in the normal test run:
// kill -9 during writes on a private PostgreSQL cluster and an immediate PostgreSQL restart under
// read load, through the suite's own command (the embedded database's kill -9 takes too long for
// the suite's time and runs with `npm run faults`).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLI, cleanEnv, tempDir } from './support/process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCENARIOS = ['kill9-writes-pg', 'pg-restart-immediate'];
/** Generous: on a 2-core machine at load 30 the two scenarios took about 70 s. */
const SUITE_TIMEOUT_MS = 240_000;

interface Check {
  ok: boolean;
  what: string;
}
interface Outcome {
  figures: Record<string, unknown>;
  checks: Check[];
}

function figuresOf(results: Record<string, Outcome>, name: string): Record<string, unknown> {
  const outcome = results[name];
  assert.ok(outcome, `no results for ${name}`);
  return outcome.figures;
}

describe('fault suite (bench/faults --quick)', { timeout: SUITE_TIMEOUT_MS }, () => {
  it('loses no acknowledged write to kill -9, answers a PostgreSQL restart with 503s only and recovers', () => {
    assert.ok(existsSync(CLI), 'dist/cli.js is missing: npm run build');
    const dir = tempDir();
    const out = join(dir, 'faults.json');
    try {
      const run = spawnSync(
        process.execPath,
        [
          'bench/faults/run.mjs',
          '--no-build',
          '--quick',
          '--only',
          SCENARIOS.join(','),
          '--json',
          out,
        ],
        { cwd: ROOT, env: cleanEnv(), encoding: 'utf8', timeout: SUITE_TIMEOUT_MS - 10_000 },
      );
      const output = `${run.stdout}\n${run.stderr}`;
      assert.ok(existsSync(out), `the fault suite wrote no results:\n${output}`);
      const results = JSON.parse(readFileSync(out, 'utf8')) as Record<string, Outcome>;
      assert.deepEqual(Object.keys(results).sort(), [...SCENARIOS].sort());

      const k = figuresOf(results, 'kill9-writes-pg');
      assert.ok(Number(k.writes_acknowledged) > 0, `kill -9: no write was acknowledged\n${output}`);
      assert.equal(
        k.writes_found,
        k.writes_acknowledged,
        `kill -9: acknowledged writes lost\n${output}`,
      );
      assert.deepEqual(k.missing, []);
      assert.equal(k.bad_5xx, 0, `kill -9: a 5xx other than 503\n${output}`);

      const r = figuresOf(results, 'pg-restart-immediate');
      assert.equal(r.bad_5xx, 0, `restart: a 5xx other than 503\n${output}`);
      assert.equal(
        r.server_errors_without_retry_after,
        0,
        `restart: a 503 without Retry-After\n${output}`,
      );
      assert.equal(r.resets, 0, `restart: connection resets\n${output}`);
      assert.equal(r.timeouts, 0, `restart: requests timed out\n${output}`);
      assert.equal(r.server_still_running, true, `restart: the server died\n${output}`);
      assert.notEqual(
        r.first_ok_after_back_ms,
        null,
        `restart: no read succeeded after PostgreSQL was back\n${output}`,
      );
      assert.ok(
        Number(r.last_error_after_back_ms ?? 0) < 5000,
        `restart: errors went on after recovery\n${output}`,
      );

      // The suite's own verdict agrees, and so does its exit status.
      const failed = Object.entries(results).flatMap(([n, o]) =>
        o.checks.filter((c) => !c.ok).map((c) => `${n}: ${c.what}`),
      );
      assert.deepEqual(failed, []);
      assert.equal(run.status, 0, output);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
