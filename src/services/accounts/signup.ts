/** Sign-up (MYAPI_SIGNUP) and the invitations that admit people when it is `invite`. */
import { ConflictError, ForbiddenError } from '../../exc.js';
import { normalizeEmail, SelfService, type Client } from './common.js';
import { InvalidTokenError } from './tokens.js';

export interface SignupRequest {
  name: string;
  email: string;
  password: string;
  invitation?: string | undefined;
}

export interface Invitation {
  email: string;
  expires_at: string;
}

export class SignupService extends SelfService {
  /**
   * A new, unverified account and the mail with its confirmation link; with an invitation (mailed
   * to this address, so it proves it) the account is verified at once. When the address has an
   * account already, nothing changes and its owner is mailed instead: the answer, and the work
   * done before it (the password is hashed either way), are the same.
   */
  async signup(request: SignupRequest, client: Client): Promise<void> {
    const mode = this.options.signup;
    if (mode === 'closed') throw new ForbiddenError('Sign-up is closed');
    if (mode === 'invite' && request.invitation === undefined) {
      throw new ForbiddenError('Sign-up needs an invitation');
    }
    const email = normalizeEmail(request.email);
    const name = request.name.trim();
    this.enforcePolicy(request.password, { email, name });
    await this.guard.count('signup', email, client.address);
    this.parts.hasher.refuseWhenFull();
    const hashed_password = await this.parts.hasher.hash(request.password);
    const { outbox, options } = this.parts;
    await this.transaction(async (tx) => {
      const invited = request.invitation !== undefined;
      if (invited) {
        const invitation = await this.tokens.consume(['invitation'], request.invitation ?? '', tx);
        if (invitation === undefined || invitation.email !== email) {
          throw new InvalidTokenError('invitation');
        }
      }
      const existing = await this.users.findByEmail(email, tx);
      const created =
        existing === undefined
          ? await this.users.insertIfAbsent({ name, email, hashed_password, verified: invited }, tx)
          : undefined;
      if (created === undefined) {
        // A token that acts on no account: the statements of a sign-up, for the timing.
        await this.tokens.issue(
          { purpose: 'verify_email', userId: null, email, lifetimeSeconds: 60 },
          tx,
        );
        const owner = existing ?? (await this.users.findByEmail(email, tx));
        await outbox.enqueue('address_taken', email, { name: owner?.name, email }, tx);
        // One audit row on either path, as every other statement of a sign-up.
        const taken = { outcome: 'failure', reason: 'address taken' } as const;
        await this.audit.record({ event: 'signup', ...taken, userId: owner?.user_id, client }, tx);
        return;
      }
      await this.audit.record(
        { event: 'signup', userId: created.user_id, client, details: { invited } },
        tx,
      );
      if (invited) return;
      const { token } = await this.tokens.issue(
        {
          purpose: 'verify_email',
          userId: created.user_id,
          email,
          lifetimeSeconds: options.verifyTokenHours * 3600,
        },
        tx,
      );
      await outbox.enqueue(
        'verify_email',
        email,
        {
          name,
          email,
          code: token,
          link: outbox.link('verify-email', 'token', token),
          hours: String(options.verifyTokenHours),
        },
        tx,
      );
    });
  }

  /** A single-use invitation mailed to `email` (admins, by API or CLI). */
  async invite(address: string): Promise<Invitation> {
    if (this.options.signup === 'closed') {
      throw new ConflictError(
        'Sign-up is closed (MYAPI_SIGNUP=closed): invitations cannot be used',
      );
    }
    const email = normalizeEmail(address);
    const { outbox, options } = this.parts;
    return this.transaction(async (tx) => {
      if ((await this.users.findByEmail(email, tx)) !== undefined) {
        throw new ConflictError(`a user with email ${email} already exists`);
      }
      const { token, expiresAt } = await this.tokens.issue(
        {
          purpose: 'invitation',
          userId: null,
          email,
          lifetimeSeconds: options.invitationDays * 86_400,
        },
        tx,
      );
      await outbox.enqueue(
        'invitation',
        email,
        {
          email,
          code: token,
          link: outbox.link('signup', 'invitation', token),
          days: String(options.invitationDays),
        },
        tx,
      );
      return { email, expires_at: expiresAt.toISOString() };
    });
  }
}
