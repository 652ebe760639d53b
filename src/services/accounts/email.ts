/** Email verification, its resend, and changing the address (effective once the new one is verified). */
import { ConflictError, InvalidInputError } from '../../exc.js';
import type { Executor } from '../../backend/database.js';
import { WrongPasswordError } from '../users.js';
import { normalizeEmail, SelfService, type Client } from './common.js';
import { TooManyRequestsError } from './guard.js';
import { InvalidTokenError } from './tokens.js';
import type { UserRow } from './user_crud.js';

export class EmailService extends SelfService {
  /**
   * Spends a confirmation token. A sign-up's marks the address verified; an address change's
   * makes the new address the account's, ends every login (the old address was the login name)
   * and tells the old address.
   */
  async verify(token: string): Promise<void> {
    const changedUser = await this.transaction(async (tx) => {
      const row = await this.tokens.consume(['verify_email', 'change_email'], token, tx);
      const user = row?.user_id == null ? undefined : await this.users.findById(row.user_id, tx);
      if (row === undefined || user === undefined) throw new InvalidTokenError();
      if (row.purpose === 'verify_email') {
        // Issued for an address the account no longer has: it proves nothing now.
        if (normalizeEmail(user.email) !== row.email) throw new InvalidTokenError();
        await this.users.markVerified(user.user_id, tx);
        return undefined;
      }
      const holder = await this.users.findByEmail(row.email, tx);
      if (holder !== undefined && holder.user_id !== user.user_id) {
        throw new ConflictError('Another account uses this address now');
      }
      await this.users.setVerifiedEmail(user.user_id, row.email, tx);
      await this.audit.record(
        {
          event: 'email.change',
          userId: user.user_id,
          details: { from: user.email, to: row.email },
        },
        tx,
      );
      await this.tokens.spendAll('change_email', user.user_id, tx);
      await this.tokens.spendAll('verify_email', user.user_id, tx);
      await this.parts.sessions.revokeUserSessions(user.user_id, 'email changed', tx);
      await this.parts.outbox.enqueue(
        'email_changed',
        user.email,
        { name: user.name, email: user.email, new_email: row.email },
        tx,
      );
      return user.user_id;
    });
    if (changedUser !== undefined) this.parts.sessions.forgetUser(changedUser);
  }

  /**
   * A new confirmation link for `address`. One mail goes to the address whatever the account's
   * state (a link, "already confirmed", or "no account"), so answer and timing tell nothing.
   */
  async resend(address: string, client: Client): Promise<void> {
    const email = normalizeEmail(address);
    await this.guard.count('verify-email', email, client.address);
    const { outbox } = this.parts;
    await this.transaction(async (tx) => {
      const user = await this.users.findByEmail(email, tx);
      if (user !== undefined && user.email_verified_at === null) {
        await this.mailConfirmation('verify_email', user, email, tx);
        return;
      }
      // The same statements as a confirmation (a token that acts on no account), for the timing.
      await this.tokens.issue(
        { purpose: 'verify_email', userId: null, email, lifetimeSeconds: 60 },
        tx,
      );
      if (user === undefined) {
        await outbox.enqueue('no_account', email, { email, action: 'confirmation link' }, tx);
      } else {
        await outbox.enqueue('already_verified', email, { name: user.name, email }, tx);
      }
    });
  }

  /**
   * Self-service address change: the current password first, counted by the login throttle like
   * a login (a stolen access token is no licence to guess), then `requestChange`.
   */
  async changeEmail(
    principal: { userId: number; email: string },
    change: { email: string; password: string },
    client: Client,
  ): Promise<void> {
    const { throttle, hasher } = this.parts;
    hasher.refuseWhenFull();
    const decision = await throttle.begin(normalizeEmail(principal.email), client.address);
    if (!decision.allowed) throw new TooManyRequestsError(decision.retryAfterSeconds);
    const { ok } = await throttle.settle(decision.attempt, async () => {
      const user = await this.users.findById(principal.userId);
      if (user === undefined) return { ok: false };
      return hasher.verify(user.hashed_password, change.password);
    });
    if (!ok) throw new WrongPasswordError();
    await this.requestChange(principal.userId, change.email);
  }

  /**
   * Asks to move the account to `address`: a confirmation link goes there and the account keeps
   * its address until it is used. When the address has an account, its owner is told instead,
   * and the answer is the same. The caller checked the current password.
   */
  async requestChange(userId: number, address: string): Promise<void> {
    const email = normalizeEmail(address);
    await this.transaction(async (tx) => {
      const user = await this.users.findById(userId, tx);
      if (user === undefined) throw new InvalidTokenError('login');
      if (normalizeEmail(user.email) === email) {
        throw new InvalidInputError('This is already your address', [
          { field: 'email', message: 'is already your address' },
        ]);
      }
      const holder = await this.users.findByEmail(email, tx);
      if (holder !== undefined) {
        await this.parts.outbox.enqueue('address_taken', email, { name: holder.name, email }, tx);
        return;
      }
      await this.mailConfirmation('change_email', user, email, tx);
    });
  }

  private async mailConfirmation(
    purpose: 'verify_email' | 'change_email',
    user: UserRow,
    email: string,
    tx: Executor,
  ): Promise<void> {
    const { outbox, options } = this.parts;
    const { token } = await this.tokens.issue(
      {
        purpose,
        userId: user.user_id,
        email,
        lifetimeSeconds: options.verifyTokenHours * 3600,
      },
      tx,
    );
    await outbox.enqueue(
      purpose,
      email,
      {
        name: user.name,
        email,
        code: token,
        link: outbox.link('verify-email', 'token', token),
        hours: String(options.verifyTokenHours),
      },
      tx,
    );
  }
}
