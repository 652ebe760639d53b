import argon2 from 'argon2';
import bcrypt from 'bcrypt';

/** OWASP's argon2id setting (19 MiB, 2 passes, 1 lane): strong, and cheap enough for 2 cores. */
const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 };
const BCRYPT_PREFIX = /^\$2[aby]\$/;

export interface Verification {
  ok: boolean;
  /** The hash is legacy (bcrypt) or weaker than today's setting: store a new one. */
  needsRehash: boolean;
}

/** The operations, by name, as the hashing process receives them. */
export const passwordAlgorithms = {
  hash: (password: string): Promise<string> => argon2.hash(password, ARGON2_OPTIONS),

  /**
   * Verifies argon2 hashes, and the bcrypt hashes that passlib wrote for the FastAPI app;
   * `upgradeLegacy` decides whether a bcrypt hash asks to be replaced.
   */
  verify: async (
    storedHash: string,
    password: string,
    upgradeLegacy: boolean,
  ): Promise<Verification> => {
    if (BCRYPT_PREFIX.test(storedHash)) {
      // $2y$ (PHP, some passlib setups) is the same algorithm as $2b$, which is all bcrypt reads.
      const normalized = storedHash.replace(/^\$2y\$/, '$2b$');
      const ok = await bcrypt.compare(password, normalized);
      return { ok, needsRehash: ok && upgradeLegacy };
    }
    if (storedHash.startsWith('$argon2')) {
      try {
        const ok = await argon2.verify(storedHash, password);
        return { ok, needsRehash: ok && argon2.needsRehash(storedHash, ARGON2_OPTIONS) };
      } catch {
        return { ok: false, needsRehash: false };
      }
    }
    return { ok: false, needsRehash: false };
  },
};

export type PasswordOperation = keyof typeof passwordAlgorithms;
