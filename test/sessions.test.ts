import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { queryRows } from '../src/backend/database.js';
import { moviesDefinition } from '../src/services/movies/index.js';
import { ruleScopeNames } from '../src/services/definition.js';
import { SessionService } from '../src/services/sessions.js';
import {
  createTestDatabase,
  describeEachDatabase,
  type TestDatabase,
} from './support/databases.js';
import { delay } from './support/process.js';
import { UserCRUD } from '../src/services/users.js';
import { users } from '../src/models/users.js';

/**
 * The per-request session check's cache, as two processes without NOTIFY (an embedded database
 * changed by the CLI) see it: a change made elsewhere is seen once the recheck interval passes.
 */
describeEachDatabase('session state cache', (kind) => {
  let t: TestDatabase;
  let userId: number;
  before(async () => {
    t = await createTestDatabase(kind);
    const user = await new UserCRUD(t.database, users).addOne({
      name: 'cache',
      email: 'cache@myapi.com',
      hashed_password: 'x',
    });
    userId = user.user_id;
  });
  after(async () => {
    await t.close();
  });

  // Without `listen`: this suite checks the recheck interval, the only bound where no NOTIFY
  // comes (an embedded database changed by the CLI, a listener reconnecting).
  const service = (recheckSeconds: number) =>
    new SessionService(
      { db: t.database.db, queryArrays: t.database.queryArrays },
      { refreshLifetimeSeconds: 3600, recheckSeconds },
    );

  it('serves a fresh state from memory, and re-reads it once the recheck interval passed', async () => {
    const here = service(0.4);
    const elsewhere = service(0.4);
    const { sessionId } = await here.start(userId, [ruleScopeNames(moviesDefinition.name).read]);
    const first = await here.state(sessionId);
    assert.equal(first?.live, true);
    const cached = here.state(sessionId);
    assert.ok(!(cached instanceof Promise), 'a fresh state needs no query');

    await elsewhere.revokeSession(sessionId, 'test');
    assert.equal((await elsewhere.state(sessionId))?.live, false, 'at once where it happened');
    assert.equal((await here.state(sessionId))?.live, true, 'the other process still trusts it');
    await delay(450);
    assert.equal((await here.state(sessionId))?.live, false, 'within the recheck interval');
  });

  it('with a recheck interval of 0 reads the database on every check', async () => {
    const here = service(0);
    const { sessionId } = await here.start(userId, [ruleScopeNames(moviesDefinition.name).read]);
    assert.ok(here.state(sessionId) instanceof Promise);
    assert.equal((await here.state(sessionId))?.live, true);
    await service(0).revokeUserSessions(userId, 'test');
    assert.equal((await here.state(sessionId))?.live, false);
  });

  it('shares one query among the checks waiting for the same session', async () => {
    const here = service(5);
    const { sessionId } = await here.start(userId, [ruleScopeNames(moviesDefinition.name).read]);
    const a = here.state(sessionId);
    const b = here.state(sessionId);
    assert.ok(a instanceof Promise);
    assert.equal(a, b);
    assert.equal((await a)?.userId, userId);
  });

  it("writes a login's session, refresh token and audit event together, and forgets the user's dead sessions", async () => {
    const here = service(0);
    const scopes = [ruleScopeNames(moviesDefinition.name).read];
    const login = async () => (await here.start(userId, scopes)).sessionId;
    const expired = await login();
    const revokedLongAgo = await login();
    const revokedLately = await login();
    await t.database.db.execute(sql`
      update myapi.auth_sessions set
        expires_at = case when session_id = ${expired} then now() - interval '1 second'
          else expires_at end,
        revoked_at = case when session_id = ${revokedLongAgo} then now() - interval '2 days'
          when session_id = ${revokedLately} then now() - interval '1 hour' else revoked_at end
      where session_id in (${expired}, ${revokedLongAgo}, ${revokedLately})`);

    const { sessionId, refreshToken } = await here.start(userId, scopes);
    const rows = (query: ReturnType<typeof sql>) => queryRows<{ id: string }>(t.database.db, query);
    const sessions = (
      await rows(sql`select session_id::text as id from myapi.auth_sessions
      where user_id = ${userId}`)
    ).map((row) => row.id);
    assert.ok(sessions.includes(sessionId) && sessions.includes(revokedLately), String(sessions));
    assert.ok(!sessions.includes(expired) && !sessions.includes(revokedLongAgo), String(sessions));
    const tokens = await rows(sql`select session_id::text as id from myapi.refresh_tokens
      where session_id in (${expired}, ${revokedLongAgo}, ${sessionId})`);
    assert.deepEqual(tokens, [{ id: sessionId }], 'the dead sessions took their refresh tokens');
    const events = await rows(sql`select details->>'session_id' as id from myapi.audit_events
      where event = 'login' and details->>'session_id' = ${sessionId}`);
    assert.equal(events.length, 1);
    assert.ok(refreshToken.length > 20);
  });
});
