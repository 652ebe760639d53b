/** The queries of personal access tokens (AccessTokenCRUD). */
import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import type { Executor } from '../backend/database.js';
import { personalAccessTokens } from '../models/access_tokens.js';
import { authSessions } from '../models/sessions.js';
import { users } from '../models/users.js';
import { AppCRUD } from './base.js';

/** A token as its owner sees it in a listing. */
export interface AccessTokenRow {
  tokenId: string;
  userId: number;
  name: string;
  prefix: string;
  scope: string;
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
}

/** A token with its session and user, as the bearer check and introspection need it. */
export interface AccessTokenWithUser {
  tokenId: string;
  userId: number;
  email: string;
  name: string;
  scope: string;
  createdAt: Date;
  expiresAt: Date | null;
  revoked: boolean;
  isActive: boolean;
  isSuperuser: boolean;
}

const listed = {
  tokenId: personalAccessTokens.token_id,
  userId: personalAccessTokens.user_id,
  name: personalAccessTokens.name,
  prefix: personalAccessTokens.prefix,
  scope: personalAccessTokens.scope,
  createdAt: personalAccessTokens.created_at,
  expiresAt: personalAccessTokens.expires_at,
  lastUsedAt: personalAccessTokens.last_used_at,
};

export class AccessTokenCRUD extends AppCRUD<typeof personalAccessTokens> {
  async insert(
    token: {
      tokenId: string;
      userId: number;
      name: string;
      hash: string;
      prefix: string;
      scope: string;
      expiresAt: Date | null;
    },
    tx?: Executor,
  ): Promise<AccessTokenRow> {
    const [row] = await this.on(tx)
      .insert(personalAccessTokens)
      .values({
        token_id: token.tokenId,
        user_id: token.userId,
        name: token.name,
        token_hash: token.hash,
        prefix: token.prefix,
        scope: token.scope,
        expires_at: token.expiresAt,
      })
      .returning(listed);
    if (row === undefined) throw new Error('insert returned no row');
    return row;
  }

  /** A user's tokens that were not revoked, newest first (expired ones too, until pruned). */
  async listLive(userId: number, tx?: Executor): Promise<AccessTokenRow[]> {
    return this.on(tx)
      .select(listed)
      .from(personalAccessTokens)
      .innerJoin(authSessions, eq(authSessions.session_id, personalAccessTokens.token_id))
      .where(and(eq(personalAccessTokens.user_id, userId), isNull(authSessions.revoked_at)))
      .orderBy(desc(personalAccessTokens.created_at), desc(personalAccessTokens.token_id));
  }

  /** One of a user's tokens that was not revoked. */
  async findLive(userId: number, tokenId: string, tx?: Executor): Promise<boolean> {
    const [row] = await this.on(tx)
      .select({ id: personalAccessTokens.token_id })
      .from(personalAccessTokens)
      .innerJoin(authSessions, eq(authSessions.session_id, personalAccessTokens.token_id))
      .where(
        and(
          eq(personalAccessTokens.user_id, userId),
          eq(personalAccessTokens.token_id, tokenId),
          isNull(authSessions.revoked_at),
        ),
      );
    return row !== undefined;
  }

  async byHash(hash: string, tx?: Executor): Promise<AccessTokenWithUser | undefined> {
    const [row] = await this.on(tx)
      .select({
        tokenId: personalAccessTokens.token_id,
        userId: users.user_id,
        email: users.email,
        name: users.name,
        scope: personalAccessTokens.scope,
        createdAt: personalAccessTokens.created_at,
        expiresAt: personalAccessTokens.expires_at,
        revoked: sql`${authSessions.revoked_at} is not null`.mapWith(Boolean),
        isActive: users.is_active,
        isSuperuser: users.is_superuser,
      })
      .from(personalAccessTokens)
      .innerJoin(authSessions, eq(authSessions.session_id, personalAccessTokens.token_id))
      .innerJoin(users, eq(users.user_id, personalAccessTokens.user_id))
      .where(eq(personalAccessTokens.token_hash, hash));
    return row;
  }

  async touch(tokenId: string, tx?: Executor): Promise<void> {
    await this.on(tx)
      .update(personalAccessTokens)
      .set({ last_used_at: sql`now()` })
      .where(eq(personalAccessTokens.token_id, tokenId));
  }
}
