import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  acquireLock,
  DatabaseInUseError,
  readLockHolder,
} from '../src/backend/database/embedded.js';

describe('the embedded database lock', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'myapi-lock-'));
  after(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('names its holder, refuses a second taker while held, and can be taken again once released', () => {
    const release = acquireLock(dataDir, { command: 'myapi serve', socketDir: '/run/x' });
    assert.deepEqual(readLockHolder(dataDir), {
      command: 'myapi serve',
      socketDir: '/run/x',
      pid: process.pid,
    });
    assert.throws(
      () => acquireLock(dataDir, { command: 'myapi users list' }),
      (error: unknown) =>
        error instanceof DatabaseInUseError &&
        error.message.includes(`in use by process ${process.pid} (myapi serve)`),
    );
    // Nothing but the lock is left behind: the file it was written to first is gone.
    assert.deepEqual(readdirSync(dataDir), ['myapi.lock']);
    release();
    assert.deepEqual(readdirSync(dataDir), []);
    acquireLock(dataDir, { command: 'myapi migrate' })();
  });

  it('is whole from the moment it exists: another process never reads it half written', async () => {
    // Another process takes and releases the lock over and over while this one reads it. A lock
    // created empty and written after could be read in between (and taken for a dead holder's).
    const module = new URL('../src/backend/database/embedded.ts', import.meta.url).href;
    const taker = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `import(${JSON.stringify(module)}).then(({ acquireLock }) => {
          for (let i = 0; i < 1500; i++) acquireLock(${JSON.stringify(dataDir)}, { command: 'x' })();
        });`,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const exited = new Promise<number | null>((resolve) => taker.on('exit', resolve));
    const seen = { whole: 0, partial: 0, exited: false };
    void exited.then(() => (seen.exited = true));
    while (!seen.exited) {
      try {
        JSON.parse(readFileSync(join(dataDir, 'myapi.lock'), 'utf8'));
        seen.whole++;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') seen.partial++;
      }
      await nextTurn();
    }
    assert.equal(await exited, 0);
    assert.ok(seen.whole > 0, 'never saw the lock: the test proved nothing');
    assert.equal(seen.partial, 0, `read half-written locks ${seen.partial} times`);
    assert.deepEqual(readdirSync(dataDir), []);
  });

  it('replaces the lock of a process that died', () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const pid = Number(dead.stdout.toString());
    assert.ok(pid > 0);
    writeFileSync(join(dataDir, 'myapi.lock'), JSON.stringify({ pid, command: 'myapi serve' }));
    assert.equal(readLockHolder(dataDir), undefined);
    const release = acquireLock(dataDir, { command: 'myapi seed' });
    const lock = JSON.parse(readFileSync(join(dataDir, 'myapi.lock'), 'utf8')) as { pid: number };
    assert.equal(lock.pid, process.pid);
    release();
  });
});
