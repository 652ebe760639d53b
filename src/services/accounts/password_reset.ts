/** The forgotten-password flow: a mailed single-use token, then a new password. */
import { normalizeEmail, SelfService, type Client } from './common.js';
import { TooManyRequestsError } from './guard.js';
import { hashAccountToken, InvalidTokenError } from './tokens.js';

export class PasswordResetService extends SelfService {
  /**
   * Mails a reset link when the address has an account, and a "no account uses this address"
   * notice when not: the same work (one mail written to the outbox) and the same answer.
   */
  async request(address: string, client: Client): Promise<void> {
    const email = normalizeEmail(address);
    await this.guard.count('password-reset', email, client.address);
    const { outbox, options } = this.parts;
    await this.transaction(async (tx) => {
      const user = await this.users.findByEmail(email, tx);
      // An unknown address gets a token too, one that acts on no account: the same statements
      // run either way, so the time of the answer does not tell them apart.
      const { token } = await this.tokens.issue(
        {
          purpose: 'password_reset',
          userId: user?.user_id ?? null,
          email,
          lifetimeSeconds: options.resetTokenMinutes * 60,
        },
        tx,
      );
      if (user === undefined) {
        await outbox.enqueue('no_account', email, { email, action: 'password reset' }, tx);
        return;
      }
      await outbox.enqueue(
        'password_reset',
        email,
        {
          name: user.name,
          email,
          code: token,
          link: outbox.link('reset-password', 'token', token),
          minutes: String(options.resetTokenMinutes),
        },
        tx,
      );
    });
  }

  /**
   * Sets the new password (the policy applies; a weak one leaves the token usable), spends every
   * reset token of the user, ends every login and mails the user. A wrong token counts as a
   * failed login of the client address on the login throttle.
   */
  async confirm(token: string, password: string, client: Client): Promise<void> {
    const { throttle, hasher, sessions, outbox } = this.parts;
    hasher.refuseWhenFull();
    const decision = await throttle.begin(
      `password-reset-token:${hashAccountToken(token)}`,
      client.address,
    );
    if (!decision.allowed) throw new TooManyRequestsError(decision.retryAfterSeconds);
    const { userId } = await throttle.settle(decision.attempt, async () => {
      const found = await this.tokens.find(['password_reset'], token);
      const user = found?.user_id == null ? undefined : await this.users.findById(found.user_id);
      if (user === undefined) return { ok: false, userId: undefined };
      this.enforcePolicy(password, user);
      const hash = await hasher.hash(password);
      const done = await this.transaction(async (tx) => {
        if ((await this.tokens.consume(['password_reset'], token, tx)) === undefined) return false;
        await this.users.setPasswordHash(user.user_id, hash, tx);
        await this.audit.record({ event: 'password.reset', userId: user.user_id, client }, tx);
        await this.tokens.spendAll('password_reset', user.user_id, tx);
        await sessions.revokeUserSessions(user.user_id, 'password reset', tx);
        await outbox.enqueue(
          'password_changed',
          user.email,
          { name: user.name, email: user.email },
          tx,
        );
        return true;
      });
      return { ok: done, userId: done ? user.user_id : undefined };
    });
    if (userId === undefined) throw new InvalidTokenError();
    // Again after the commit: a request in between may have cached the old state.
    sessions.forgetUser(userId);
  }
}
