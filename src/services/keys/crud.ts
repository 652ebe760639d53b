/** SigningKeyCRUD: the only SQL of the signing key set. */
import { and, desc, eq, gt, isNull, or, sql } from 'drizzle-orm';
import type { Executor } from '../../backend/database.js';
import { signingKeys } from '../../models/signing_keys.js';
import { AppCRUD } from '../base.js';

/** Told on every change of the key set, so every process reloads it. */
export const KEYS_CHANNEL = 'myapi_signing_keys';

export type SigningKeyRow = typeof signingKeys.$inferSelect;

export class SigningKeyCRUD extends AppCRUD<typeof signingKeys> {
  /** Keys that still verify (not retired, not past verify_until), newest first. */
  usable(tx?: Executor): Promise<SigningKeyRow[]> {
    return this.on(tx)
      .select()
      .from(signingKeys)
      .where(
        and(
          isNull(signingKeys.retired_at),
          or(isNull(signingKeys.verify_until), gt(signingKeys.verify_until, sql`now()`)),
        ),
      )
      .orderBy(desc(signingKeys.created_at), desc(signingKeys.kid));
  }

  all(tx?: Executor): Promise<SigningKeyRow[]> {
    return this.on(tx)
      .select()
      .from(signingKeys)
      .orderBy(desc(signingKeys.created_at), desc(signingKeys.kid));
  }

  /** Sets verify_until on the keys that signed until now (those without one). */
  async supersede(verifySeconds: number, tx?: Executor): Promise<void> {
    await this.on(tx)
      .update(signingKeys)
      .set({ verify_until: sql`now() + make_interval(secs => ${verifySeconds})` })
      .where(and(isNull(signingKeys.verify_until), isNull(signingKeys.retired_at)));
  }

  /** Retires one key; false when there is no such key still in use. */
  async retire(kid: string, tx?: Executor): Promise<boolean> {
    const rows = await this.on(tx)
      .update(signingKeys)
      .set({ retired_at: sql`now()` })
      .where(and(eq(signingKeys.kid, kid), isNull(signingKeys.retired_at)))
      .returning({ kid: signingKeys.kid });
    return rows.length > 0;
  }

  /** Serialises rotations: two at once would both supersede and both add a signer. */
  async lock(tx: Executor): Promise<void> {
    await tx.execute(sql`lock table ${signingKeys} in share row exclusive mode`);
  }

  async announce(tx?: Executor): Promise<void> {
    await this.on(tx).execute(sql`select pg_notify(${KEYS_CHANNEL}, 'keys')`);
  }
}
