import { eq, sql } from 'drizzle-orm';
import { Value } from 'typebox/value';
import type { Executor } from '../backend/database.js';
import { sqlState } from '../backend/database.js';
import { ConflictError, InvalidInputError } from '../exc.js';
import { users } from '../models/users.js';
import {
  UserCreateSchema,
  type User,
  type UserCreate,
  type UserWithHash,
} from '../schemas/users.js';
import { AppCRUD, AppService, type ServiceContext } from './base.js';
import { PasswordHasher } from './passwords.js';

const UNIQUE_VIOLATION = '23505';

export class UserCRUD extends AppCRUD<typeof users> {
  getByEmail(email: string, tx?: Executor): Promise<UserWithHash | undefined> {
    // Emails from the tutorial's table may be in any case; lower(email) has an index.
    return this.getOne(sql`lower(${users.email}) = ${email.toLowerCase()}`, tx);
  }

  async setPasswordHash(userId: number, hash: string, tx?: Executor): Promise<void> {
    await this.on(tx).update(users).set({ hashed_password: hash }).where(eq(users.user_id, userId));
  }
}

export function publicUser({ user_id, name, email }: UserWithHash): User {
  return { user_id, name, email };
}

export class UserService extends AppService {
  private readonly crud: UserCRUD;

  constructor(
    context: ServiceContext,
    private readonly hasher: PasswordHasher,
  ) {
    super(context);
    this.crud = new UserCRUD(this.db, users);
  }

  /** The user with this email (any case) and the stored hash, for the login check only. */
  findForLogin(email: string): Promise<UserWithHash | undefined> {
    return this.crud.getByEmail(email.trim());
  }

  async replacePasswordHash(userId: number, hash: string): Promise<void> {
    await this.crud.setPasswordHash(userId, hash);
  }

  async createUser(input: UserCreate): Promise<User> {
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
    if ((await this.crud.getByEmail(candidate.email)) !== undefined) {
      throw new ConflictError(`a user with email ${candidate.email} already exists`);
    }
    const hashed_password = await this.hasher.hash(candidate.password);
    try {
      const row = await this.crud.addOne({
        name: candidate.name,
        email: candidate.email,
        hashed_password,
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
}
