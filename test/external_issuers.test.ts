// Tokens of another issuer (MYAPI_TRUSTED_ISSUERS), with a second myapi instance over real HTTP as
// that issuer (EdDSA, its own database and JWK set): accepted on the movies routes for a mapped
// local user, refused from an untrusted issuer or for another audience, keys cached and fetched
// again on an unknown kid at most once per cooldown.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { importPKCS8, SignJWT } from 'jose';
import type { TrustedIssuer } from '../src/backend/trusted_issuers.js';
import { KeyEncryption } from '../src/services/keys/crypto.js';
import { accountOptions, createServices } from '../src/services/index.js';
import { SigningKeyService } from '../src/services/signing_keys.js';
import {
  createTestDatabase,
  describeEachDatabase,
  type TestDatabase,
} from './support/databases.js';
import { ADMIN, USER } from './support/http.js';
import { headerOf, KEYS_SECRET, keySetApp, privateKeys, type KeySetApp } from './support/keys.js';
import { delay, scaled } from './support/process.js';

const COOLDOWN_SECONDS = 2;
const ONLY_THERE = {
  name: 'issuer only',
  email: 'only-there@issuer.test',
  password: 'only there 123',
};

async function seeded(kind: TestDatabase['kind'], users: (typeof USER)[]): Promise<TestDatabase> {
  const t = await createTestDatabase(kind);
  await createServices(t.database).movies.seedDemo();
  const accounts = createServices(t.database, { accounts: accountOptions(t.settings) });
  for (const user of users) await accounts.users.createUser(user);
  return t;
}

async function tokenFrom(url: string, user: { email: string; password: string }, scope?: string) {
  const response = await fetch(`${url}/token`, {
    method: 'POST',
    body: new URLSearchParams({
      username: user.email,
      password: user.password,
      ...(scope === undefined ? {} : { scope }),
    }),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return ((await response.json()) as { access_token: string }).access_token;
}

describeEachDatabase('trusted external issuers', { timeout: scaled(120_000) }, (kind) => {
  let issuerDb: TestDatabase;
  let strangerDb: TestDatabase;
  let localDb: TestDatabase;
  let issuer: KeySetApp;
  let stranger: KeySetApp;
  let local: KeySetApp;
  let otherAudience: KeySetApp;
  let jwksFetches = 0;

  const trusted = (changes: Partial<TrustedIssuer> = {}): TrustedIssuer[] => [
    {
      issuer: issuer.url,
      jwks_uri: `${issuer.url}/.well-known/jwks.json`,
      audience: 'myapi',
      user_claim: 'email',
      scopes: ['movies:read'],
      algorithms: ['EdDSA'],
      jwks_cooldown_seconds: COOLDOWN_SECONDS,
      jwks_max_age_seconds: 600,
      ...changes,
    },
  ];

  before(async () => {
    issuerDb = await seeded(kind, [USER, ADMIN, ONLY_THERE]);
    strangerDb = await seeded(kind, [USER]);
    localDb = await seeded(kind, [USER, ADMIN]);
    // The embedded database has no notices: the issuer sees its own rotation on the next reload.
    issuer = await keySetApp(
      issuerDb,
      { token_keys_reload_seconds: 1 },
      {
        beforeListen: (app) => {
          app.addHook('onRequest', (request, _reply, done) => {
            if (request.url === '/.well-known/jwks.json') jwksFetches += 1;
            done();
          });
        },
      },
    );
    stranger = await keySetApp(strangerDb);
    local = await keySetApp(localDb, { trusted_issuers: JSON.stringify(trusted()) });
    otherAudience = await keySetApp(localDb, {
      trusted_issuers: JSON.stringify(trusted({ audience: 'movies-api' })),
    });
  });
  after(async () => {
    for (const app of [issuer, stranger, local, otherAudience]) await app.close();
    for (const t of [issuerDb, strangerDb, localDb]) await t.close();
  });

  const get = (app: KeySetApp, path: string, token: string) =>
    fetch(`${app.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

  it("accepts the issuer's token on the movies routes for the local user of its email", async () => {
    const token = await tokenFrom(issuer.url, USER);
    assert.equal(headerOf(token).alg, 'EdDSA');
    const response = await get(local, '/movies/1', token);
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(((await response.json()) as { movie_id: number }).movie_id, 1);
    // Routes open to any login (the caller's own account) take only logins of this server.
    assert.equal((await get(local, '/users/me', token)).status, 401);
  });

  it('grants no more than the issuer may carry: an admin of the issuer cannot write movies here', async () => {
    const token = await tokenFrom(issuer.url, ADMIN, 'movies:read movies:write');
    assert.equal((await get(local, '/movies/1', token)).status, 200);
    const write = await fetch(`${local.url}/movies`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Foreign', released: 2000, rating: 5 }),
    });
    assert.equal(write.status, 403);
  });

  it('refuses a user unknown here, an untrusted issuer, and another audience (401)', async () => {
    assert.equal(
      (await get(local, '/movies/1', await tokenFrom(issuer.url, ONLY_THERE))).status,
      401,
    );
    const foreign = await tokenFrom(stranger.url, USER);
    assert.equal((await get(local, '/movies/1', foreign)).status, 401);
    const response = await get(otherAudience, '/movies/1', await tokenFrom(issuer.url, USER));
    assert.equal(response.status, 401);
    assert.match(String(response.headers.get('www-authenticate')), /invalid_token/);
  });

  it('caches the keys, and fetches them again on an unknown kid at most once per cooldown', async () => {
    const token = await tokenFrom(issuer.url, USER);
    assert.equal((await get(local, '/movies/1', token)).status, 200);
    const cached = jwksFetches;
    for (let i = 0; i < 10; i++) assert.equal((await get(local, '/movies/2', token)).status, 200);
    assert.equal(jwksFetches, cached, 'a known key was fetched again');

    // Tokens claiming the issuer with kids it never had (a stranger's key): each is refused, and
    // the burst fetches the set again at most once per cooldown window.
    const strangerKey = [...(await privateKeys(strangerDb)).values()][0] ?? '';
    const burstStarted = Date.now();
    const burstBefore = jwksFetches;
    for (let i = 0; i < 20; i++) {
      const forged = await new SignJWT({ email: USER.email, scope: 'movies:read' })
        .setProtectedHeader({ alg: 'EdDSA', kid: `unknown-${i}` })
        .setIssuer(issuer.url)
        .setAudience('myapi')
        .setSubject('1')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(await importPKCS8(strangerKey, 'EdDSA'));
      assert.equal((await get(local, '/movies/1', forged)).status, 401);
    }
    const burstWindows = Math.floor((Date.now() - burstStarted) / (COOLDOWN_SECONDS * 1000)) + 1;
    assert.ok(
      jwksFetches - burstBefore <= burstWindows,
      `${jwksFetches - burstBefore} fetches for 20 unknown kids in ${burstWindows} cooldown windows`,
    );

    // The issuer rotates: its new tokens name a kid the cached set lacks.
    const kid = await new SigningKeyService(issuerDb.database).rotate(
      'EdDSA',
      new KeyEncryption(KEYS_SECRET),
      3600,
    );
    let rotated = '';
    const deadline = Date.now() + scaled(10_000);
    while (headerOf(rotated === '' ? token : rotated).kid !== kid) {
      assert.ok(Date.now() < deadline, 'the issuer never signed with its new key');
      await delay(100);
      rotated = await tokenFrom(issuer.url, USER);
    }
    const started = Date.now();
    const before = jwksFetches;
    let accepted = false;
    while (!accepted) {
      const statuses = await Promise.all(
        Array.from({ length: 5 }, () => get(local, '/movies/3', rotated).then((r) => r.status)),
      );
      accepted = statuses.includes(200);
      assert.ok(Date.now() - started < scaled(20_000), 'the new key was never fetched');
      if (!accepted) await delay(100);
    }
    const windows = Math.floor((Date.now() - started) / (COOLDOWN_SECONDS * 1000)) + 1;
    assert.ok(jwksFetches - before >= 1, 'the new key was not fetched');
    assert.ok(
      jwksFetches - before <= windows,
      `${jwksFetches - before} fetches in ${windows} cooldown windows`,
    );
  });
});
