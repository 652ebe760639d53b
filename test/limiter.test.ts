import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { ConcurrencyLimiter, QueueFullError } from '../src/backend/limiter.js';

describe('ConcurrencyLimiter', () => {
  it('never runs more than its concurrency, and runs everything queued in order', async () => {
    const limiter = new ConcurrencyLimiter(2, 10);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        limiter.run(async () => {
          running++;
          peak = Math.max(peak, running);
          await sleep(5);
          order.push(i);
          running--;
        }),
      ),
    );
    assert.equal(peak, 2);
    assert.equal(order.length, 8);
    assert.deepEqual(order.slice(2), [2, 3, 4, 5, 6, 7]);
  });

  it('refuses at once beyond the queue, and keeps its slot after a failing task', async () => {
    const limiter = new ConcurrencyLimiter(1, 1);
    const first = limiter.run(() => sleep(20).then(() => 'first'));
    const second = limiter.run(() => Promise.reject(new Error('boom')));
    await assert.rejects(
      limiter.run(() => Promise.resolve('third')),
      QueueFullError,
    );
    assert.equal(await first, 'first');
    await assert.rejects(second, /boom/);
    assert.equal(await limiter.run(() => Promise.resolve('after')), 'after');
    assert.equal(limiter.queued, 0);
  });

  it('rests a slot after each task so that it is busy only its duty cycle', async () => {
    const limiter = new ConcurrencyLimiter(1, 10, 0.5);
    const started: number[] = [];
    const begin = performance.now();
    await Promise.all(
      Array.from({ length: 4 }, () =>
        limiter.run(async () => {
          started.push(performance.now() - begin);
          await sleep(20);
        }),
      ),
    );
    // Each 20 ms task is followed by ~20 ms of rest: starts near 0, 40, 80, 120 ms.
    for (let i = 1; i < started.length; i++) {
      const gap = (started[i] ?? 0) - (started[i - 1] ?? 0);
      assert.ok(gap >= 38, `task ${i} started ${gap.toFixed(1)} ms after the previous one`);
    }
  });
});
