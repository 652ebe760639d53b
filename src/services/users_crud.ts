/** UserCRUD: every query on the users table. */
import { and, asc, count, eq, getTableColumns, gt, sql } from 'drizzle-orm';
import type { Executor } from '../backend/database.js';
import { users } from '../models/users.js';
import type { UserUpdate, UserWithHash } from '../schemas/users.js';
import { AppCRUD } from './base.js';

export class UserCRUD extends AppCRUD<typeof users> {
  /**
   * Every login looks its user up by email, so it is built once, a named statement: no query
   * building while a server's login code is not yet optimised, no parse and plan per login.
   * Emails from the tutorial's table may be in any case; lower(email) has an index.
   */
  private readonly byEmail = this.preparedRows('users_by_email', getTableColumns(users), (fields) =>
    this.db
      .select(fields)
      .from(users)
      .where(sql`lower(${users.email}) = ${sql.placeholder('email')}`)
      .limit(1),
  );

  async getByEmail(email: string): Promise<UserWithHash | undefined> {
    const [row] = await this.byEmail({ email: email.toLowerCase() });
    return row;
  }

  getById(userId: number, tx?: Executor): Promise<UserWithHash | undefined> {
    return this.getOne(eq(users.user_id, userId), tx);
  }

  async page(after: number, limit: number, tx?: Executor): Promise<UserWithHash[]> {
    return this.on(tx)
      .select()
      .from(users)
      .where(gt(users.user_id, after))
      .orderBy(asc(users.user_id))
      .limit(limit);
  }

  async total(tx?: Executor): Promise<number> {
    const [row] = await this.on(tx).select({ n: count() }).from(users);
    return row?.n ?? 0;
  }

  async setPasswordHash(userId: number, hash: string, tx?: Executor): Promise<void> {
    await this.on(tx).update(users).set({ hashed_password: hash }).where(eq(users.user_id, userId));
  }

  async update(
    userId: number,
    changes: UserUpdate,
    tx?: Executor,
  ): Promise<UserWithHash | undefined> {
    const [row] = await this.on(tx)
      .update(users)
      .set(changes)
      .where(eq(users.user_id, userId))
      .returning();
    return row;
  }

  async remove(userId: number, tx?: Executor): Promise<boolean> {
    const rows = await this.on(tx)
      .delete(users)
      .where(eq(users.user_id, userId))
      .returning({ id: users.user_id });
    return rows.length > 0;
  }

  /**
   * The active superusers, locked until the transaction ends: two admins demoting each other at
   * once are serialised here, so the second sees the first's change and the last one stays.
   */
  async lockActiveSuperusers(tx: Executor): Promise<number[]> {
    const rows = await tx
      .select({ id: users.user_id })
      .from(users)
      .where(and(eq(users.is_active, true), eq(users.is_superuser, true)))
      .for('update');
    return rows.map((row) => row.id);
  }
}
