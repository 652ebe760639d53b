/** The queries of self-service on the users table. */
import { eq, sql } from 'drizzle-orm';
import type { Executor } from '../../backend/database.js';
import { users } from '../../models/users.js';
import { UserCRUD } from '../users.js';

export type UserRow = typeof users.$inferSelect;

export class AccountUserCRUD extends UserCRUD {
  /** The user with this email in any case, every column. */
  findByEmail(email: string, tx?: Executor): Promise<UserRow | undefined> {
    return this.getOne(sql`lower(${users.email}) = ${email.toLowerCase()}`, tx);
  }

  findById(userId: number, tx?: Executor): Promise<UserRow | undefined> {
    return this.getOne(eq(users.user_id, userId), tx);
  }

  /** A new account, or undefined when the address is taken (the unique constraint decides). */
  async insertIfAbsent(
    values: { name: string; email: string; hashed_password: string; verified: boolean },
    tx: Executor,
  ): Promise<UserRow | undefined> {
    const [row] = await tx
      .insert(users)
      .values({
        name: values.name,
        email: values.email,
        hashed_password: values.hashed_password,
        email_verified_at: values.verified ? sql`now()` : null,
      })
      .onConflictDoNothing()
      .returning();
    return row;
  }

  async markVerified(userId: number, tx: Executor): Promise<void> {
    await tx
      .update(users)
      .set({ email_verified_at: sql`now()` })
      .where(eq(users.user_id, userId));
  }

  async setVerifiedEmail(userId: number, email: string, tx: Executor): Promise<void> {
    await tx
      .update(users)
      .set({ email, email_verified_at: sql`now()` })
      .where(eq(users.user_id, userId));
  }
}
