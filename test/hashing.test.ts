import assert from 'node:assert/strict';
import { scaled } from './support/timeouts.js';
import { fork } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import argon2 from 'argon2';
import bcrypt from 'bcrypt';
import {
  HashingClosedError,
  HashingUnavailableError,
  inProcessHashing,
  NicedHashing,
} from '../src/backend/hashing.js';
import { ServiceUnavailableError } from '../src/exc.js';
import { PasswordHasher } from '../src/services/passwords.js';

const OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

describe('the niced hashing process', { timeout: scaled(60_000) }, () => {
  const hashing = new NicedHashing(12);
  /** Read afresh each time: the process comes and goes. */
  const pidOf = (): number | undefined => hashing.pid;
  after(async () => {
    await hashing.close();
  });

  it('computes what argon2 and bcrypt compute in process, at the given nice value', async () => {
    assert.equal(pidOf(), undefined, 'started before the first hash');
    const hash = await hashing.argon2Hash('a passphrase', OPTIONS);
    assert.ok(hash.startsWith('$argon2id$'));
    assert.equal(await argon2.verify(hash, 'a passphrase'), true);
    assert.equal(await hashing.argon2Verify(hash, 'a passphrase'), true);
    assert.equal(await hashing.argon2Verify(hash, 'another one'), false);
    await assert.rejects(hashing.argon2Verify('$argon2id$garbage', 'x'));
    const legacy = await bcrypt.hash('qwerty123', 4);
    assert.equal(await hashing.bcryptCompare('qwerty123', legacy), true);
    assert.equal(await hashing.bcryptCompare('qwerty124', legacy), false);
    const pid = pidOf();
    assert.ok(pid !== undefined);
    for (const thread of readdirSync(`/proc/${pid}/task`).map(Number)) {
      assert.equal(getPriority(thread), 12, `thread ${thread}`);
    }
  });

  it('fails the hashes in flight when the process dies, and starts a new one for the next', async () => {
    const slow = await bcrypt.hash('slow', 13);
    const first = pidOf();
    assert.ok(first !== undefined, 'the process of the first test');
    const inFlight = hashing.bcryptCompare('slow', slow);
    process.kill(first, 'SIGKILL');
    await assert.rejects(inFlight, HashingUnavailableError);
    assert.equal(await hashing.bcryptCompare('slow', slow), true);
    assert.notEqual(pidOf(), first);
  });

  it('gives the process none of the server settings (the token key, the database URL)', async () => {
    process.env.MYAPI_TOKEN_KEY = 'a-secret-the-child-must-not-see';
    const fresh = new NicedHashing(10);
    try {
      await fresh.bcryptCompare('x', await bcrypt.hash('x', 4));
      const pid = fresh.pid;
      assert.ok(pid !== undefined);
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      assert.ok(!environ.includes('a-secret-the-child-must-not-see'));
      assert.ok(environ.split('\0').includes('MYAPI_HASH_NICE=10'));
    } finally {
      delete process.env.MYAPI_TOKEN_KEY;
      await fresh.close();
    }
  });

  it('answers when a preload listens to messages first, and passes on no node flags', async () => {
    // An APM agent or profiler preloaded through NODE_OPTIONS reaches the child too; one that
    // listens to IPC messages took the requests sent before the worker listened, and the login
    // waited forever.
    const dir = mkdtempSync(join(tmpdir(), 'myapi-preload-'));
    const preload = join(dir, 'listens.mjs');
    writeFileSync(preload, "process.on('message', () => undefined);\n");
    const saved = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `${saved ?? ''} --import ${pathToFileURL(preload).href}`;
    // As if the server ran under a profiler: fork() would hand the child the same flags.
    const flags = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
    process.execArgv.push(...flags);
    const fresh = new NicedHashing(10);
    try {
      const legacy = await bcrypt.hash('x', 4);
      const answers = await Promise.all([1, 2, 3].map(() => fresh.bcryptCompare('x', legacy)));
      assert.deepEqual(answers, [true, true, true]);
      const pid = fresh.pid;
      assert.ok(pid !== undefined);
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      assert.ok(
        !argv.some((arg) => /^--(inspect|cpu-prof|heap-prof|prof)/.test(arg)),
        argv.join(' '),
      );
    } finally {
      process.execArgv.splice(process.execArgv.indexOf(flags[0] as string), flags.length);
      if (saved === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = saved;
      await fresh.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives up on a process that stops answering, and starts a new one', async () => {
    // The deadline also covers a new process's start (through tsx here), slow on a busy machine.
    const impatient = new NicedHashing(10, scaled(3_000));
    let stuck: number | undefined;
    try {
      const legacy = await bcrypt.hash('x', 4);
      assert.equal(await impatient.bcryptCompare('x', legacy), true);
      stuck = impatient.pid;
      assert.ok(stuck !== undefined);
      process.kill(stuck, 'SIGSTOP');
      const asked = Date.now();
      await assert.rejects(impatient.bcryptCompare('x', legacy), HashingUnavailableError);
      assert.ok(Date.now() - asked < scaled(10_000), 'answered 503 instead of waiting');
      assert.equal(await impatient.bcryptCompare('x', legacy), true);
      assert.notEqual(impatient.pid, stuck);
    } finally {
      if (stuck !== undefined) {
        try {
          process.kill(stuck, 'SIGKILL');
        } catch {
          // already gone, as it should be
        }
      }
      await impatient.close();
    }
  });

  it('finishes the hashes in flight when a signal to the process group reaches it too', async () => {
    const slow = await bcrypt.hash('slow', 12);
    assert.equal(await hashing.bcryptCompare('warm', slow), false);
    const pid = pidOf();
    assert.ok(pid !== undefined);
    const inFlight = hashing.bcryptCompare('slow', slow);
    process.kill(pid, 'SIGTERM');
    process.kill(pid, 'SIGINT');
    assert.equal(await inFlight, true);
    assert.equal(pidOf(), pid);
    assert.equal(existsSync(`/proc/${pid}`), true);
  });

  /** The hashing process forked as NicedHashing forks it, its stderr read. */
  const forkWorker = () => {
    const worker = fileURLToPath(new URL('../src/backend/hash_worker.ts', import.meta.url));
    const child = fork(worker, [], {
      execArgv: ['--import', 'tsx'],
      serialization: 'json',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const ended = new Promise<{ code: number | null; stderr: string }>((resolve) =>
      child.once('exit', (code) => {
        resolve({ code, stderr });
      }),
    );
    return { child, ended };
  };

  it('ends quietly when the server is gone before it is ready', async () => {
    // Its "ready" used to crash it with ERR_IPC_CHANNEL_CLOSED, a stack trace in the server's log
    // when a login started it during the server's shutdown; every time. Its answers go the same
    // way (a hash finishing as the server closes the channel crashed it with EPIPE).
    const runs = [forkWorker(), forkWorker(), forkWorker()];
    for (const { child } of runs) child.disconnect();
    for (const { ended } of runs) assert.deepEqual(await ended, { code: 0, stderr: '' });
  });

  it('ends its process on close, and starts none for a hash asked for after', async () => {
    await hashing.argon2Hash('x', OPTIONS);
    const pid = pidOf();
    assert.ok(pid !== undefined);
    await hashing.close();
    assert.equal(existsSync(`/proc/${pid}`), false);
    assert.equal(pidOf(), undefined);
    // A login whose client left during the shutdown still runs; it must not fork a new process,
    // and its 503 (logged) says why.
    await assert.rejects(hashing.argon2Hash('late', OPTIONS), HashingClosedError);
    assert.equal(pidOf(), undefined);
    const hasher = new PasswordHasher({ functions: hashing });
    await assert.rejects(hasher.verify(await argon2.hash('late', OPTIONS), 'late'), (error) => {
      assert.ok(error instanceof ServiceUnavailableError);
      assert.equal(error.message, 'The server is stopping; retry shortly');
      return true;
    });
    assert.equal(pidOf(), undefined);
  });
});

describe(
  'the niced hashing process closing with hashes in flight',
  { timeout: scaled(60_000) },
  () => {
    it('refuses them as the server stopping, not as a restart to retry', async () => {
      // The logins of clients that left during a shutdown: the server has stopped waiting for them.
      const closing = new NicedHashing(10);
      await closing.argon2Hash('warm', OPTIONS);
      const inFlight = [1, 2, 3].map((n) => closing.argon2Hash(`in flight ${n}`, OPTIONS));
      await closing.close();
      for (const hash of inFlight) await assert.rejects(hash, HashingClosedError);
    });
  },
);

describe('password checks while the hashing process is lost', () => {
  const lost = () =>
    Promise.reject(new HashingUnavailableError('the password hashing process exited (SIGTERM)'));
  const hashed = argon2.hash('a passphrase', OPTIONS);

  it('answers 503, not a wrong password, when the process goes during a verification', async () => {
    const hasher = new PasswordHasher({
      functions: { ...inProcessHashing, argon2Verify: lost, bcryptCompare: lost },
    });
    for (const stored of [await hashed, await bcrypt.hash('a passphrase', 4)]) {
      await assert.rejects(hasher.verify(stored, 'a passphrase'), (error: unknown) => {
        assert.ok(error instanceof ServiceUnavailableError);
        assert.equal(error.status, 503);
        assert.equal(error.headers['retry-after'], '1');
        return true;
      });
    }
    // A stored hash argon2 cannot read is still just a failed check.
    const working = new PasswordHasher();
    assert.deepEqual(await working.verify('$argon2id$garbage', 'a passphrase'), {
      ok: false,
      needsRehash: false,
    });
  });

  it('answers 503 for an unknown user, and makes the timing hash again next time', async () => {
    let hashes = 0;
    const hasher = new PasswordHasher({
      functions: {
        ...inProcessHashing,
        argon2Hash: (password, options) =>
          ++hashes === 1 ? lost() : inProcessHashing.argon2Hash(password, options),
      },
    });
    await assert.rejects(hasher.verifyNothing('a guess'), ServiceUnavailableError);
    await hasher.verifyNothing('another guess');
    await hasher.verifyNothing('a third guess');
    assert.equal(hashes, 2, 'made once more after the failure, then kept');
  });
});
