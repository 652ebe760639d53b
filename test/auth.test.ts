import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcrypt';
import { createSigner } from 'fast-jwt';
import { UserCRUD } from '../src/services/users.js';
import { users } from '../src/models/users.js';
import {
  createTestApp,
  describeEachDatabase,
  TOKEN_KEY,
  type TestApp,
} from './support/databases.js';
import { form, login, seedTutorial, USER, USER_SCOPES } from './support/http.js';
import { scaled } from './support/timeouts.js';

function b64(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decode(token: string): Record<string, unknown> {
  const [, payload] = token.split('.');
  return JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as Record<string, unknown>;
}

function hs(token: string, key: string, alg: 'sha256' | 'sha384' = 'sha256'): string {
  return createHmac(alg, key).update(token).digest('base64url');
}

describeEachDatabase('authentication', (kind) => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp(kind);
    await seedTutorial(t);
  });
  after(async () => {
    await t.close();
  });

  const token = (fields: Record<string, string>) =>
    t.app.inject({ method: 'POST', url: '/token', ...form(fields) });
  const getMovie = (authorization?: string) =>
    t.app.inject({
      method: 'GET',
      url: '/movies/1',
      headers: authorization === undefined ? {} : { authorization },
    });

  it('issues a bearer token for the password grant, not to be cached', async () => {
    const response = await token({ username: USER.email, password: USER.password });
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['cache-control'], 'no-store');
    const body = response.json<Record<string, unknown>>();
    assert.deepEqual(Object.keys(body).sort(), [
      'access_token',
      'expires_in',
      'refresh_token',
      'scope',
      'token_type',
    ]);
    assert.equal(body.scope, USER_SCOPES);
    assert.equal(body.token_type, 'bearer');
    assert.equal(body.expires_in, 3600);
    const accessToken = String(body.access_token);
    assert.deepEqual(
      JSON.parse(Buffer.from(accessToken.split('.')[0] ?? '', 'base64url').toString()),
      {
        alg: 'HS256',
        typ: 'JWT',
      },
    );
    const claims = decode(accessToken);
    assert.match(String(claims.sub), /^[1-9][0-9]*$/);
    assert.equal(claims.email, USER.email);
    assert.equal(claims.name, USER.name);
    assert.equal(claims.iss, 'myapi');
    assert.equal(claims.aud, 'myapi');
    assert.equal(typeof claims.jti, 'string');
    assert.match(String(claims.sid), /^[0-9a-f-]{36}$/);
    assert.equal(claims.scope, USER_SCOPES);
    assert.equal(Number(claims.exp) - Number(claims.iat), 3600);
    assert.equal((await getMovie(`Bearer ${accessToken}`)).statusCode, 200);
  });

  it('accepts what Swagger UI and OAuth2 clients send: grant_type, empty scope, client id/secret', async () => {
    const response = await token({
      grant_type: 'password',
      username: USER.email.toUpperCase(),
      password: USER.password,
      scope: '',
      client_id: 'swagger',
      client_secret: 'anything',
    });
    assert.equal(response.statusCode, 200, response.body);
  });

  it('refuses other grant types and malformed requests with 400 and the OAuth2 error code', async () => {
    const grant = await token({ grant_type: 'client_credentials', username: 'a', password: 'b' });
    assert.equal(grant.statusCode, 400);
    assert.equal(grant.json<{ error: string }>().error, 'unsupported_grant_type');
    assert.equal(typeof grant.json<{ detail: unknown }>().detail, 'string');

    const missing = await token({ username: USER.email });
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.json<{ error: string }>().error, 'invalid_request');
    assert.equal(missing.headers['content-type'], 'application/json; charset=utf-8');
  });

  it('answers a wrong password and an unknown user identically, in comparable time', async () => {
    const wrong = await token({ username: USER.email, password: 'not-the-password' });
    const unknown = await token({ username: 'nobody@myapi.com', password: 'not-the-password' });
    for (const response of [wrong, unknown]) {
      assert.equal(response.statusCode, 401);
      assert.equal(response.headers['www-authenticate'], 'Bearer');
      assert.equal(response.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(response.json<{ error: string }>().error, 'invalid_grant');
    }
    assert.equal(wrong.body, unknown.body);

    // Without the dummy verification an unknown user answers ~50x faster; 0.3 leaves room for
    // noise. Interleaved, so that load from elsewhere on the machine hits both alike.
    const elapsed = async (username: string) => {
      const started = process.hrtime.bigint();
      await token({ username, password: 'not-the-password' });
      return Number(process.hrtime.bigint() - started);
    };
    const known: number[] = [];
    const unknownTimes: number[] = [];
    for (let i = 0; i < 7; i++) {
      known.push(await elapsed(USER.email));
      unknownTimes.push(await elapsed('nobody@myapi.com'));
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[3] ?? 0;
    assert.ok(
      median(unknownTimes) > median(known) * 0.3,
      `unknown user: median ${median(unknownTimes)} ns; wrong password: ${median(known)} ns`,
    );
  });

  it('verifies a passlib bcrypt hash and replaces it with argon2id at that login', async () => {
    const crud = new UserCRUD(t.database, users);
    for (const prefix of ['$2b$', '$2a$', '$2y$']) {
      const email = `legacy${prefix.replaceAll('$', '')}@myapi.com`;
      const legacy = (await bcrypt.hash('old-password', 4)).replace(/^\$2b\$/, prefix);
      await crud.addOne({ name: 'legacy', email, hashed_password: legacy });

      const refused = await token({ username: email, password: 'wrong' });
      assert.equal(refused.statusCode, 401);
      assert.equal((await crud.getByEmail(email))?.hashed_password, legacy);

      const accepted = await token({ username: email, password: 'old-password' });
      assert.equal(accepted.statusCode, 200, `${prefix}: ${accepted.body}`);
      const upgraded = (await crud.getByEmail(email))?.hashed_password ?? '';
      assert.match(upgraded, /^\$argon2id\$/);
      assert.equal((await token({ username: email, password: 'old-password' })).statusCode, 200);
    }
  });

  it('keeps bcrypt hashes when upgrading is off (the FastAPI app still shares the table)', async () => {
    const shared = await createTestApp(kind, { passwords: { upgrade_legacy: false } });
    try {
      const crud = new UserCRUD(shared.database, users);
      const legacy = await bcrypt.hash('old-password', 4);
      await crud.addOne({ name: 'shared', email: 'shared@myapi.com', hashed_password: legacy });
      const response = await shared.app.inject({
        method: 'POST',
        url: '/token',
        ...form({ username: 'shared@myapi.com', password: 'old-password' }),
      });
      assert.equal(response.statusCode, 200);
      assert.equal((await crud.getByEmail('shared@myapi.com'))?.hashed_password, legacy);
    } finally {
      await shared.close();
    }
  });

  it('bounds concurrent hashing: beyond the queue a login gets 503 with Retry-After at once', async () => {
    const busy = await createTestApp(kind, { passwords: { concurrency: 1, max_queued: 2 } });
    try {
      await seedTutorial(busy);
      const attempt = () =>
        busy.app.inject({
          method: 'POST',
          url: '/token',
          ...form({ username: USER.email, password: USER.password }),
        });
      const responses = await Promise.all(Array.from({ length: 12 }, attempt));
      const statuses = responses.map((r) => r.statusCode);
      const errors = busy.logs.raw.filter((line) => line.includes('"level":50'));
      assert.deepEqual(errors, [], `errors logged: ${statuses.join()}`);
      // One hashing, two waiting: the other nine are refused without waiting their turn.
      assert.equal(statuses.filter((s) => s === 200).length, 3, statuses.join());
      assert.equal(statuses.filter((s) => s === 503).length, 9, statuses.join());
      const refused = responses.find((r) => r.statusCode === 503);
      assert.ok(refused);
      assert.equal(refused.headers['retry-after'], '1');
      assert.match(String(refused.headers['content-type']), /^application\/problem\+json/);
      assert.equal(
        refused.json<{ detail: string }>().detail,
        'Too many logins at once; retry shortly',
      );
      assert.equal((await attempt()).statusCode, 200, 'served again once the queue drains');
    } finally {
      await busy.close();
    }
  });

  it('refuses logins beyond a full queue before any database work', async () => {
    // One hashing slot, no queue: a login whose hash takes seconds (bcrypt cost 15) holds it.
    const busy = await createTestApp(kind, {
      passwords: { concurrency: 1, max_queued: 0, upgrade_legacy: false },
    });
    try {
      await seedTutorial(busy);
      const slow = { email: 'slow@myapi.com', password: 'a slow hash to verify' };
      await new UserCRUD(busy.database, users).addOne({
        name: 'slow',
        email: slow.email,
        hashed_password: await bcrypt.hash(slow.password, 15),
      });
      const attempt = (username: string, password: string) =>
        busy.app.inject({ method: 'POST', url: '/token', ...form({ username, password }) });
      const { db } = busy.database;
      const transaction = db.transaction.bind(db);
      let transactions = 0;
      let settled = 0;
      db.transaction = ((...args: Parameters<typeof transaction>) => {
        transactions++;
        return transaction(...args).finally(() => {
          settled++;
        });
      }) as typeof db.transaction;
      const holding = attempt(slow.email, slow.password);
      // The slow login holds the slot once its throttle transaction is done and its user read:
      // wait for the first, then give the second time that grows with the machine's load.
      while (settled === 0) await delay(10);
      await delay(scaled(100));
      transactions = 0;
      const refused = await Promise.all(
        Array.from({ length: 5 }, () => attempt(USER.email, USER.password)),
      );
      db.transaction = transaction;
      assert.deepEqual(
        refused.map((r) => r.statusCode),
        [503, 503, 503, 503, 503],
      );
      assert.equal(transactions, 0, 'a refused login opened a transaction (the throttle)');
      assert.equal((await holding).statusCode, 200);
    } finally {
      await busy.close();
    }
  });

  describe('bearer tokens on protected routes', () => {
    let good: string;
    let claims: Record<string, unknown>;
    before(async () => {
      good = await login(t.app);
      claims = decode(good);
    });

    const rejectsAsInvalid = async (
      authorization: string,
      detail = 'Could not validate credentials',
    ) => {
      const response = await getMovie(authorization);
      assert.equal(response.statusCode, 401, authorization);
      assert.match(String(response.headers['www-authenticate']), /^Bearer error="invalid_token"/);
      assert.equal(response.json<{ detail: string }>().detail, detail);
    };

    it('asks for a token when none is sent', async () => {
      const response = await getMovie();
      assert.equal(response.statusCode, 401);
      assert.equal(response.headers['www-authenticate'], 'Bearer');
      assert.equal(response.json<{ detail: string }>().detail, 'Not authenticated');
    });

    it('refuses a malformed header or garbage token', async () => {
      await rejectsAsInvalid('Basic dXNlcjpwYXNz');
      await rejectsAsInvalid('Bearer not-a-jwt');
      await rejectsAsInvalid(`Bearer ${good.split('.').slice(0, 2).join('.')}`);
    });

    it('refuses a token signed with another key (forged) or with a changed payload', async () => {
      const forged = createSigner({ key: 'x'.repeat(48), algorithm: 'HS256' })(claims);
      await rejectsAsInvalid(`Bearer ${forged}`);
      const [header, , signature] = good.split('.');
      await rejectsAsInvalid(
        `Bearer ${header ?? ''}.${b64({ ...claims, sub: '999' })}.${signature ?? ''}`,
      );
    });

    it('refuses alg none and other algorithms, even with the right key', async () => {
      await rejectsAsInvalid(`Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`);
      const unsigned384 = `${b64({ alg: 'HS384', typ: 'JWT' })}.${b64(claims)}`;
      await rejectsAsInvalid(`Bearer ${unsigned384}.${hs(unsigned384, TOKEN_KEY, 'sha384')}`);
    });

    it('refuses an expired token, saying so', async () => {
      const now = Math.floor(Date.now() / 1000);
      const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ ...claims, iat: now - 7200, exp: now - 3600 })}`;
      await rejectsAsInvalid(`Bearer ${unsigned}.${hs(unsigned, TOKEN_KEY)}`, 'Token has expired');
    });

    it('refuses a token it accepted before once the token expires', async () => {
      // Accepted tokens are remembered per process; the memory must end at exp.
      const now = Math.floor(Date.now() / 1000);
      const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ ...claims, iat: now, exp: now + 2 })}`;
      const token = `Bearer ${unsigned}.${hs(unsigned, TOKEN_KEY)}`;
      assert.equal((await getMovie(token)).statusCode, 200);
      assert.equal((await getMovie(token)).statusCode, 200);
      await delay((now + 2) * 1000 - Date.now() + 50);
      await rejectsAsInvalid(token, 'Token has expired');
    });

    it('refuses tokens for another issuer or audience, or without exp', async () => {
      for (const changed of [{ iss: 'other' }, { aud: 'other' }, { exp: undefined }]) {
        const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ ...claims, ...changed })}`;
        await rejectsAsInvalid(`Bearer ${unsigned}.${hs(unsigned, TOKEN_KEY)}`);
      }
    });

    it('accepts a token minted elsewhere with the shared key and our claims', async () => {
      const now = Math.floor(Date.now() / 1000);
      const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ ...claims, iat: now, exp: now + 60 })}`;
      const response = await getMovie(`Bearer ${unsigned}.${hs(unsigned, TOKEN_KEY)}`);
      assert.equal(response.statusCode, 200);
    });

    it('never writes passwords, tokens or authorization headers to the log', () => {
      const logged = t.logs.raw.join('\n');
      assert.ok(t.logs.lines.length > 10);
      assert.ok(!logged.includes(USER.password));
      assert.ok(!logged.includes('old-password'));
      assert.ok(!logged.includes(good));
      assert.ok(!logged.includes(good.split('.')[2] ?? 'no-signature'));
      assert.ok(!/Bearer ey/.test(logged));
      for (const line of t.logs.lines)
        assert.equal(typeof line.reqId === 'string' || line.reqId === undefined, true);
    });
  });
});
