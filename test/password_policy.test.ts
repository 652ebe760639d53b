import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COMMON_PASSWORDS_TEXT } from '../src/data/common_passwords.js';
import {
  DEFAULT_MIN_PASSWORD_LENGTH,
  MAX_PASSWORD_LENGTH_LIMIT,
  PasswordPolicy,
  codePointLength,
  commonPasswords,
} from '../src/services/password_policy.js';

const TOO_SHORT = 'password must be at least 8 characters';
const TOO_COMMON = 'password is too common (it is in a list of the 10,000 most used passwords)';
const IS_EMAIL = 'password must not be your email address or the part of it before the @';
const IS_NAME = 'password must not be your name';

/** A password of exactly `n` code points that is in no list. */
function ofLength(n: number, unit = 'k'): string {
  return unit.repeat(n);
}

describe('PasswordPolicy', () => {
  const policy = new PasswordPolicy();

  it('defaults to a minimum of 8 and a maximum of 128', () => {
    assert.equal(DEFAULT_MIN_PASSWORD_LENGTH, 8);
    assert.equal(MAX_PASSWORD_LENGTH_LIMIT, 1024);
    assert.equal(policy.minLength, 8);
    assert.equal(policy.maxLength, 128);
  });

  it('accepts exactly the minimum and rejects one less', () => {
    assert.deepEqual(policy.problems('vx7-tq2p'), []);
    assert.deepEqual(policy.problems('vx7-tq2'), [TOO_SHORT]);
    assert.deepEqual(policy.problems(''), [TOO_SHORT]);
  });

  it('counts Unicode code points, not UTF-16 units or bytes', () => {
    const e = '\u00e9'; // é, precomposed
    assert.equal(codePointLength(e.repeat(7)), 7);
    assert.deepEqual(policy.problems(e.repeat(7)), [TOO_SHORT]);
    assert.deepEqual(policy.problems(e.repeat(8)), []);
    const emoji = '\u{1F600}'; // two UTF-16 units
    assert.equal(codePointLength(emoji.repeat(7)), 7);
    assert.deepEqual(policy.problems(emoji.repeat(7)), [TOO_SHORT]);
    assert.deepEqual(policy.problems(emoji.repeat(8)), []);
    // 128 emoji are 256 UTF-16 units: still within the maximum, and not truncated.
    assert.deepEqual(policy.problems(emoji.repeat(128)), []);
    assert.equal(policy.problems(emoji.repeat(129)).length, 1);
    assert.equal(codePointLength('\ud800x'), 2); // a lone surrogate counts as one
  });

  it('allows spaces and has no composition rules', () => {
    assert.deepEqual(policy.problems('correct horse battery staple'), []);
    assert.deepEqual(policy.problems('onlylowercaseletters'), []);
    assert.deepEqual(policy.problems('9384756201938'), []);
    assert.deepEqual(policy.problems('        '), []);
  });

  it('accepts 64 and 128 characters and rejects 129 with a clear message', () => {
    assert.deepEqual(policy.problems(ofLength(64)), []);
    assert.deepEqual(policy.problems(ofLength(128)), []);
    assert.deepEqual(policy.problems(ofLength(129)), [
      'password must be at most 128 characters (it has 129)',
    ]);
    assert.deepEqual(policy.problems(ofLength(100_000)), [
      'password must be at most 128 characters (it has 100000)',
    ]);
  });

  it('rejects the most used passwords whatever their case', () => {
    for (const password of [
      'password',
      'PASSWORD',
      'PassWord',
      'qwerty123',
      'QWERTY123',
      'Qwerty123',
      '12345678',
      'iloveyou',
      'ILoveYou',
    ]) {
      assert.deepEqual(policy.problems(password), [TOO_COMMON], password);
    }
  });

  it('gives every reason at once', () => {
    assert.deepEqual(policy.problems('1234'), [TOO_SHORT, TOO_COMMON]);
  });

  it('checks the list whatever the configured minimum', () => {
    const lenient = new PasswordPolicy({ minLength: 6 });
    assert.deepEqual(lenient.problems('123456'), [TOO_COMMON]);
    assert.deepEqual(lenient.problems('Monkey'), [TOO_COMMON]);
    assert.deepEqual(lenient.problems('vx7-tq'), []);
    assert.deepEqual(lenient.problems('vx7-t'), ['password must be at least 6 characters']);
    assert.deepEqual(new PasswordPolicy({ minLength: 1 }).problems(''), [
      'password must be at least 1 character',
    ]);
  });

  it("rejects the user's email address, its local part and the user's name", () => {
    const user = { email: 'Alice.Smith@Example.com', name: ' Bob Marley ' };
    assert.deepEqual(policy.problems('alice.smith@example.com', user), [IS_EMAIL]);
    assert.deepEqual(policy.problems('ALICE.SMITH', user), [IS_EMAIL]);
    assert.deepEqual(policy.problems('bob marley', user), [IS_NAME]);
    assert.deepEqual(policy.problems('BOB MARLEY', user), [IS_NAME]);
    // Only equality counts, and a missing or empty context matches nothing.
    assert.deepEqual(policy.problems('alice.smith!', user), []);
    assert.deepEqual(policy.problems('bob marley!', user), []);
    assert.deepEqual(policy.problems('alice.smith'), []);
    assert.deepEqual(policy.problems('', { email: '', name: '' }), [TOO_SHORT]);
    assert.deepEqual(policy.problems('@example.com', { email: '@example.com' }), [IS_EMAIL]);
    // A name that is also a common password gives both reasons.
    assert.deepEqual(policy.problems('Jennifer', { name: 'jennifer' }), [TOO_COMMON, IS_NAME]);
  });

  it('validates its options', () => {
    const ok = new PasswordPolicy({ minLength: 12, maxLength: 64 });
    assert.equal(ok.minLength, 12);
    assert.equal(ok.maxLength, 64);
    assert.deepEqual(ok.problems(ofLength(65)), [
      'password must be at most 64 characters (it has 65)',
    ]);
    assert.deepEqual(ok.problems(ofLength(11)), ['password must be at least 12 characters']);
    assert.equal(new PasswordPolicy({ maxLength: 1024 }).maxLength, 1024);
    assert.equal(new PasswordPolicy({ minLength: 100 }).maxLength, 128);
    assert.equal(new PasswordPolicy({ minLength: 128 }).minLength, 128);
    const bad: [Record<string, number>, RegExp][] = [
      [{ minLength: 0 }, /minLength must be an integer from 1 to 128, got 0/],
      [{ minLength: 129 }, /minLength .* got 129/],
      [{ minLength: 7.5 }, /minLength .* got 7.5/],
      [{ minLength: Number.NaN }, /minLength .* got NaN/],
      [{ maxLength: 63 }, /maxLength must be an integer from 64 to 1024, got 63/],
      [{ maxLength: 1025 }, /maxLength .* got 1025/],
      [{ maxLength: 100.5 }, /maxLength .* got 100.5/],
      [{ minLength: 100, maxLength: 99 }, /maxLength must be an integer from 100 to 1024, got 99/],
    ];
    for (const [options, message] of bad) {
      assert.throws(() => new PasswordPolicy(options), RangeError, JSON.stringify(options));
      assert.throws(() => new PasswordPolicy(options), message);
    }
  });
});

describe('the common password list', () => {
  it('is built once and shared by every policy', () => {
    const first = commonPasswords();
    const a = new PasswordPolicy();
    const b = new PasswordPolicy({ minLength: 6 });
    assert.deepEqual(a.problems('qwerty123'), [TOO_COMMON]);
    assert.deepEqual(b.problems('qwerty123'), [TOO_COMMON]);
    assert.equal(commonPasswords(), first);
    assert.equal(commonPasswords(), commonPasswords());
  });

  it('holds thousands of distinct lowercase entries of at least 4 characters', () => {
    const list = commonPasswords();
    const lines = COMMON_PASSWORDS_TEXT.split('\n');
    assert.equal(list.size, lines.length, 'no duplicates');
    assert.ok(list.size > 9_000 && list.size <= 10_000, String(list.size));
    for (const entry of list) {
      assert.equal(entry, entry.toLowerCase());
      assert.ok(codePointLength(entry) >= 4, entry);
    }
    for (const entry of ['password', '12345678', 'iloveyou', 'qwerty123']) {
      assert.ok(list.has(entry), entry);
    }
  });
});
