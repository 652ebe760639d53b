/** UserService and UserCRUD: user accounts, their rules and their queries. */
import { Value } from 'typebox/value';
import type { Executor } from '../backend/database.js';
import { sqlState } from '../backend/database.js';
import { ConflictError, ForbiddenError, InvalidInputError, NotFoundError } from '../exc.js';
import { auditEvents } from '../models/audit.js';
import { users } from '../models/users.js';
import {
  UserCreateSchema,
  type User,
  type UserCreate,
  type UserListQuery,
  type UserUpdate,
  type UserWithHash,
} from '../schemas/users.js';
import { AuditCRUD, type AuditEventName, type ClientInfo } from './audit/crud.js';
import { AppService, type ServiceContext } from './base.js';
import type { PasswordHasher } from './passwords.js';
import type { PasswordPolicy } from './password_policy.js';
import type { SessionService } from './sessions.js';
import { UserCRUD } from './users_crud.js';

export { UserCRUD };

const UNIQUE_VIOLATION = '23505';

/** The current password given for a change is wrong: 403, and a failure for the throttle. */
export class WrongPasswordError extends ForbiddenError {
  constructor() {
    super('The current password is incorrect');
  }
}

export function publicUser({ user_id, name, email, is_active, is_superuser }: UserWithHash): User {
  return { user_id, name, email, is_active, is_superuser };
}

/** Who makes a change, for the audit log: a user (an admin, or themself) or the CLI (no actor). */
export interface Actor {
  actorId?: number | undefined;
  client?: ClientInfo | undefined;
}

export interface CreateOptions extends Actor {
  /** HTTP paths refuse a weak password; the CLI, an operator's tool, only warns (the default). */
  enforcePolicy?: boolean;
}

/** The audit events a change of a user's record stands for; a rename is `user.update`. */
function updateEvents(changes: UserUpdate): AuditEventName[] {
  const events: AuditEventName[] = [];
  if (changes.is_active === true) events.push('user.activate');
  if (changes.is_active === false) events.push('user.deactivate');
  if (changes.is_superuser === true) events.push('user.promote');
  if (changes.is_superuser === false) events.push('user.demote');
  if (changes.name !== undefined || events.length === 0) events.push('user.update');
  return events;
}

/** Accounts: creation, self-service and administration, with the password policy. */
export class UserService extends AppService {
  private readonly crud: UserCRUD;
  private readonly audit: AuditCRUD;

  constructor(
    context: ServiceContext,
    private readonly hasher: PasswordHasher,
    private readonly policy: PasswordPolicy,
    private readonly sessions: SessionService,
  ) {
    super(context);
    this.crud = new UserCRUD(context, users);
    this.audit = new AuditCRUD(context, auditEvents);
  }

  /** The user with this email (any case) and the stored hash, for the login check only. */
  findForLogin(email: string): Promise<UserWithHash | undefined> {
    return this.crud.getByEmail(email.trim());
  }

  async replacePasswordHash(userId: number, hash: string): Promise<void> {
    await this.crud.setPasswordHash(userId, hash);
  }

  /** Why a password is weak for this user, as sentences; empty when it is fine. */
  passwordProblems(password: string, user: { email?: string; name?: string } = {}): string[] {
    return this.policy.problems(password, user);
  }

  private enforcePolicy(
    password: string,
    user: { email?: string; name?: string },
    field = 'password',
  ): void {
    const problems = this.passwordProblems(password, user);
    if (problems.length > 0) {
      throw new InvalidInputError(
        problems.join('; '),
        problems.map((message) => ({ field, message })),
      );
    }
  }

  async createUser(input: UserCreate, options: CreateOptions = {}): Promise<User> {
    const candidate = {
      ...input,
      name: input.name.trim(),
      email: input.email.trim().toLowerCase(),
    };
    const errors = [...Value.Errors(UserCreateSchema, candidate)].map((error) => ({
      field: error.instancePath.replace(/^\//, '') || 'user',
      message: error.message,
    }));
    if (errors.length > 0) {
      throw new InvalidInputError(
        errors
          .map((e) =>
            e.field === 'email'
              ? `invalid email address '${candidate.email}'`
              : `${e.field} ${e.message}`,
          )
          .join('; '),
        errors,
      );
    }
    if (options.enforcePolicy === true)
      this.enforcePolicy(candidate.password, candidate, 'password');
    if ((await this.crud.getByEmail(candidate.email)) !== undefined) {
      throw new ConflictError(`a user with email ${candidate.email} already exists`);
    }
    const hashed_password = await this.hasher.hash(candidate.password);
    try {
      const row = await this.transaction(async (tx) => {
        const added = await this.crud.addOne(
          {
            name: candidate.name,
            email: candidate.email,
            hashed_password,
            is_superuser: candidate.is_superuser ?? false,
          },
          tx,
        );
        await this.audit.record(
          {
            event: 'user.create',
            userId: added.user_id,
            actorId: options.actorId,
            client: options.client,
            details: { email: added.email, is_superuser: added.is_superuser },
          },
          tx,
        );
        return added;
      });
      return publicUser(row);
    } catch (error) {
      // Two creations racing past the check above: the unique constraint decides.
      if (sqlState(error) === UNIQUE_VIOLATION) {
        throw new ConflictError(`a user with email ${candidate.email} already exists`, error);
      }
      throw error;
    }
  }

  private async require(userId: number, tx?: Executor): Promise<UserWithHash> {
    const user = await this.crud.getById(userId, tx);
    if (user === undefined) throw new NotFoundError(`User ${userId} not found`);
    return user;
  }

  async get(userId: number): Promise<User> {
    return publicUser(await this.require(userId));
  }

  /** The user with this email, for the CLI; NotFoundError names the email. */
  async getByEmail(email: string): Promise<User> {
    const user = await this.crud.getByEmail(email.trim());
    if (user === undefined) throw new NotFoundError(`no user with email ${email.trim()}`);
    return publicUser(user);
  }

  async list(query: UserListQuery): Promise<{ users: User[]; total: number; next?: number }> {
    const after = query.after ?? 0;
    // One extra row tells whether there is a next page without a second query.
    const rows = await this.crud.page(after, query.limit + 1);
    const page = rows.slice(0, query.limit).map(publicUser);
    const last = page.at(-1);
    return {
      users: page,
      total: await this.crud.total(),
      ...(rows.length > query.limit && last !== undefined ? { next: last.user_id } : {}),
    };
  }

  /**
   * Changes a user's name, status or role. Disabling ends every login at once; a change of role
   * is seen by the next request (scopes are re-derived from the role on every check). The last
   * active superuser can be neither demoted nor disabled: no one could manage accounts after.
   */
  async update(userId: number, changes: UserUpdate, by: Actor = {}): Promise<User> {
    const name = changes.name?.trim();
    if (name === '') throw new InvalidInputError('name must not be empty');
    const updated = await this.transaction(async (tx) => {
      // First: a change that fails after this point takes its audit rows with it.
      for (const event of updateEvents(changes)) {
        await this.audit.record(
          {
            event,
            userId,
            actorId: by.actorId,
            client: by.client,
            details: { fields: Object.keys(changes).sort().join(',') },
          },
          tx,
        );
      }
      const losesAdmin = changes.is_superuser === false || changes.is_active === false;
      if (losesAdmin) await this.keepOneSuperuser(userId, 'demote or disable', tx);
      const row = await this.crud.update(userId, { ...changes, ...(name ? { name } : {}) }, tx);
      if (row === undefined) throw new NotFoundError(`User ${userId} not found`);
      if (changes.is_active === false) {
        await this.sessions.revokeUserSessions(userId, 'user disabled', tx);
      } else {
        await this.sessions.announceUserChange(userId, tx);
      }
      return row;
    });
    this.sessions.forgetUser(userId);
    return publicUser(updated);
  }

  async delete(userId: number, by: Actor = {}): Promise<void> {
    await this.transaction(async (tx) => {
      await this.audit.record(
        { event: 'user.delete', userId, actorId: by.actorId, client: by.client },
        tx,
      );
      await this.keepOneSuperuser(userId, 'delete', tx);
      if (!(await this.crud.remove(userId, tx))) {
        throw new NotFoundError(`User ${userId} not found`);
      }
      await this.sessions.announceUserChange(userId, tx);
    });
    // Its sessions went with it (on delete cascade); the per-request check finds none.
    this.sessions.forgetUser(userId);
  }

  private async keepOneSuperuser(userId: number, action: string, tx: Executor): Promise<void> {
    const superusers = await this.crud.lockActiveSuperusers(tx);
    if (superusers.length === 1 && superusers[0] === userId) {
      throw new ConflictError(
        `Cannot ${action} the last active superuser; promote another user first`,
      );
    }
  }

  /**
   * Sets a new password and ends every login of the user (their tokens stop working), so a
   * password changed after a compromise locks the intruder out. With `current`, the old
   * password must match first (self-service); without it, an operator is resetting it.
   */
  async setPassword(
    userId: number,
    password: string,
    options: { current?: string; enforcePolicy?: boolean } & Actor = {},
  ): Promise<{ revokedSessions: number }> {
    const user = await this.require(userId);
    if (options.current !== undefined) {
      const { ok } = await this.hasher.verify(user.hashed_password, options.current);
      if (!ok) throw new WrongPasswordError();
    }
    if (options.enforcePolicy === true) this.enforcePolicy(password, user, 'new_password');
    const hash = await this.hasher.hash(password);
    const revokedSessions = await this.transaction(async (tx) => {
      await this.crud.setPasswordHash(userId, hash, tx);
      const ended = await this.sessions.revokeUserSessions(userId, 'password changed', tx);
      await this.audit.record(
        {
          event: 'password.change',
          userId,
          actorId: options.actorId,
          client: options.client,
          details: {
            revoked_sessions: ended,
            by: options.current === undefined ? 'operator' : 'user',
          },
        },
        tx,
      );
      return ended;
    });
    // Again after the commit: a request between the first forget and the commit re-read the old state.
    this.sessions.forgetUser(userId);
    return { revokedSessions };
  }
}
