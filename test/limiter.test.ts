import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import {
  ConcurrencyLimiter,
  loadAwareConcurrency,
  loadAwareDutyCycle,
  QueueFullError,
} from '../src/backend/limiter.js';
import { inQuietWindow } from './support/event_loop.js';

/** Runs four 20 ms tasks through the limiter at once; the ms between one's start and the next's. */
async function gapsBetweenStarts(limiter: ConcurrencyLimiter): Promise<number[]> {
  const started: number[] = [];
  await Promise.all(
    Array.from({ length: 4 }, () =>
      limiter.run(async () => {
        started.push(performance.now());
        await sleep(20);
      }),
    ),
  );
  return started.slice(1).map((at, i) => at - (started[i] ?? 0));
}

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
    const gaps = await gapsBetweenStarts(new ConcurrencyLimiter(1, 10, 0.5));
    // Each 20 ms task is followed by ~20 ms of rest: starts near 0, 40, 80, 120 ms.
    gaps.forEach((gap, i) => {
      assert.ok(gap >= 38, `task ${i + 1} started ${gap.toFixed(1)} ms after the previous one`);
    });
  });

  it('asks a changing duty cycle again after each task', async () => {
    const duties = [1, 0.2, 1];
    const limiter = new ConcurrencyLimiter(1, 10, () => duties.shift() ?? 1);
    const [first = 0, second = 0, third = 0] = await gapsBetweenStarts(limiter);
    const shown = `gaps ${[first, second, third].map((g) => g.toFixed(1)).join(', ')} ms`;
    // No rest after the first task, 80 ms after the second (duty 0.2), none after the third.
    assert.ok(second >= 95, shown);
    assert.ok(first < second - 50 && third < second - 50, shown);
    assert.equal(duties.length, 0);
  });
});

describe('loadAwareDutyCycle', () => {
  it('is 1 after an idle event loop and the busy share after a blocked one', async () => {
    const duty = loadAwareDutyCycle(0.25);
    // Long enough that the runner's own work (a GC, the next test file on a loaded machine) is
    // a small part of the idle window.
    await sleep(250);
    const afterIdle = duty();
    const until = performance.now() + 100;
    while (performance.now() < until) {
      // the event loop is busy, as it is serving requests
    }
    const afterBusy = duty();
    assert.equal(afterIdle, 1, `after an idle loop: ${afterIdle}`);
    assert.ok(afterBusy < 0.3 && afterBusy >= 0.25, `after a busy loop: ${afterBusy}`);
  });

  it('is 1, no rest at all, while the loop is busy only a little, as with logins alone', async () => {
    // A tenth of the time busy (a login's own statements and replies), the rest waiting.
    const reading = await inQuietWindow(0.25, async () => {
      const duty = loadAwareDutyCycle(0.25);
      for (let turn = 0; turn < 10; turn++) {
        const until = performance.now() + 3;
        while (performance.now() < until) {
          // a login's work on the event loop
        }
        await sleep(27);
      }
      return duty();
    });
    assert.equal(reading, 1);
  });
});

describe('a changing concurrency', () => {
  it('starts the waiting tasks the grown concurrency allows, and no more than a fallen one', async () => {
    let concurrency = 1;
    const limiter = new ConcurrencyLimiter(() => concurrency, 10);
    let running = 0;
    const peaks: number[] = [];
    const task = async () => {
      running++;
      peaks.push(running);
      await sleep(30);
      running--;
    };
    const first = Promise.all([limiter.run(task), limiter.run(task), limiter.run(task)]);
    assert.equal(limiter.queued, 2);
    concurrency = 3;
    await first;
    // The first task's end let both waiting tasks start together.
    assert.deepEqual(peaks, [1, 1, 2]);

    concurrency = 1;
    peaks.length = 0;
    await Promise.all(Array.from({ length: 4 }, () => limiter.run(task)));
    assert.deepEqual(peaks, [1, 1, 1, 1]);
  });

  it('a newcomer waits behind the tasks already waiting', async () => {
    let concurrency = 1;
    const limiter = new ConcurrencyLimiter(() => concurrency, 10);
    const order: string[] = [];
    const task = (name: string) => () =>
      sleep(20).then(() => {
        order.push(name);
      });
    const all = [limiter.run(task('a')), limiter.run(task('b'))];
    concurrency = 2;
    all.push(limiter.run(task('c')));
    await Promise.all(all);
    assert.deepEqual(order, ['a', 'b', 'c']);
  });
});

describe('loadAwareConcurrency', () => {
  it('allows every core after an idle event loop and the busy share after a blocked one', async () => {
    const concurrency = loadAwareConcurrency(4, 2);
    await sleep(250);
    const afterIdle = concurrency();
    const until = performance.now() + 150;
    while (performance.now() < until) {
      // the event loop is busy, as it is serving requests
    }
    const afterBusy = concurrency();
    assert.equal(afterIdle, 4);
    assert.equal(afterBusy, 2);
  });
});
