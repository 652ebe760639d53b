import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { after, describe, it } from 'node:test';
import argon2 from 'argon2';
import bcrypt from 'bcrypt';
import { HashingUnavailableError, NicedHashing } from '../src/backend/hashing.js';

const OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

describe('the niced hashing process', () => {
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

  it('ends its process on close', async () => {
    await hashing.argon2Hash('x', OPTIONS);
    const pid = pidOf();
    assert.ok(pid !== undefined);
    await hashing.close();
    assert.equal(existsSync(`/proc/${pid}`), false);
    assert.equal(pidOf(), undefined);
  });
});
