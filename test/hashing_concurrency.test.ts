// The server's default hashing concurrency (services/index.ts), in a process of its own: loading
// the services makes a heap whose GC would otherwise land in the limiter tests' timing windows.
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { loadSettings } from '../src/backend/config.js';
import { accountOptions } from '../src/services/index.js';
import { inQuietWindow } from './support/event_loop.js';

describe('the server’s hashing concurrency, unset', () => {
  it('is two hashes per core while the server is idle, and half the cores under load', async () => {
    const { settings } = loadSettings({ env: {}, cwd: '/nonexistent' });
    const { concurrency } = accountOptions(settings).passwords;
    assert.equal(typeof concurrency, 'function');
    const now = concurrency as () => number;
    // An idle window, measured here too: a GC on a loaded machine can make it look busy.
    const afterIdle = await inQuietWindow(0.2, async () => {
      await sleep(500);
      return now();
    });
    const until = performance.now() + 150;
    while (performance.now() < until) {
      // the event loop is busy, as it is serving requests
    }
    assert.equal(afterIdle, 2 * availableParallelism());
    assert.equal(now(), Math.max(1, Math.floor(availableParallelism() / 2)));
  });
});
