/** What the self-service account services share: settings, the outbox, the users' queries. */
import { accountTokens } from '../../models/account_tokens.js';
import { auditEvents } from '../../models/audit.js';
import { users } from '../../models/users.js';
import { InvalidInputError } from '../../exc.js';
import { AuditCRUD } from '../audit/crud.js';
import { AppService, type ServiceContext } from '../base.js';
import type { Outbox } from '../mail/outbox.js';
import type { PasswordHasher } from '../passwords.js';
import type { PasswordPolicy } from '../password_policy.js';
import type { SessionService } from '../sessions.js';
import type { LoginThrottle } from '../throttle.js';
import { MailRequestGuard } from './guard.js';
import { AccountTokenCRUD } from './tokens.js';
import { AccountUserCRUD } from './user_crud.js';

export type SignupMode = 'closed' | 'open' | 'invite';

export interface SelfServiceOptions {
  signup: SignupMode;
  requireVerifiedEmail: boolean;
  verifyTokenHours: number;
  resetTokenMinutes: number;
  invitationDays: number;
}

export interface SelfServiceParts {
  hasher: PasswordHasher;
  policy: PasswordPolicy;
  sessions: SessionService;
  throttle: LoginThrottle;
  outbox: Outbox;
  options: SelfServiceOptions;
}

/** Where a request came from, for the rate limits. */
export interface Client {
  address: string;
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export abstract class SelfService extends AppService {
  protected readonly users: AccountUserCRUD;
  protected readonly tokens: AccountTokenCRUD;
  protected readonly guard: MailRequestGuard;
  /** Each change records its event in its own transaction (services/audit/). */
  protected readonly audit: AuditCRUD;

  constructor(
    context: ServiceContext,
    protected readonly parts: SelfServiceParts,
  ) {
    super(context);
    this.users = new AccountUserCRUD(context, users);
    this.tokens = new AccountTokenCRUD(context, accountTokens);
    this.guard = new MailRequestGuard(parts.throttle);
    this.audit = new AuditCRUD(context, auditEvents);
  }

  protected get options(): SelfServiceOptions {
    return this.parts.options;
  }

  /** 422 with the policy's sentences when the password is weak for this user. */
  protected enforcePolicy(password: string, user: { email: string; name: string }): void {
    const problems = this.parts.policy.problems(password, user);
    if (problems.length > 0) {
      throw new InvalidInputError(
        problems.join('; '),
        problems.map((message) => ({ field: 'password', message })),
      );
    }
  }
}
