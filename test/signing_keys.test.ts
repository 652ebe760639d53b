// The key set over real HTTP: EdDSA by default, the JWKS verified by panva's jose before and after
// a rotation, rotation reaching every instance, retirement, and the RFC 8414 metadata driven by
// oauth4webapi (discovery, password grant, refresh, revocation).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { signingKeys } from '../src/models/signing_keys.js';
import { KeyEncryption } from '../src/services/keys/crypto.js';
import { SigningKeyService, verifySeconds } from '../src/services/signing_keys.js';
import {
  createTestDatabase,
  describeEachDatabase,
  type TestDatabase,
} from './support/databases.js';
import { KEYS_SECRET, headerOf, keySetApp, type KeySetApp } from './support/keys.js';
import { USER } from './support/http.js';
import { accountOptions, createServices } from '../src/services/index.js';
import { delay, scaled } from './support/process.js';
import { SCOPE_DESCRIPTIONS } from '../src/services/scopes.js';

// The test servers speak plain HTTP on 127.0.0.1; oauth4webapi insists on https unless told.
// eslint-disable-next-line @typescript-eslint/no-deprecated
const insecure = { [oauth.allowInsecureRequests]: true } as const;

async function passwordLogin(
  url: string,
): Promise<{ access_token: string; refresh_token: string }> {
  const response = await fetch(`${url}/token`, {
    method: 'POST',
    body: new URLSearchParams({ username: USER.email, password: USER.password }),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as { access_token: string; refresh_token: string };
}

function movie(url: string, token: string): Promise<Response> {
  return fetch(`${url}/movies/1`, { headers: { authorization: `Bearer ${token}` } });
}

/** Polls `check` until it holds, or fails after `ms`. */
async function eventually(what: string, check: () => Promise<boolean>, ms = scaled(10_000)) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await delay(50);
  }
}

describeEachDatabase('signing keys, JWKS and metadata', { timeout: scaled(120_000) }, (kind) => {
  let t: TestDatabase;
  let first: KeySetApp;
  let second: KeySetApp;
  // On PostgreSQL a rotation must arrive by NOTIFY: the reload interval is far off. The embedded
  // database has no NOTIFY; there the interval (1 s) and the unknown-kid reload carry it.
  const reloadSeconds = kind === 'postgres' ? 3600 : 1;
  const rotate = () =>
    new SigningKeyService(t.database).rotate(
      'EdDSA',
      new KeyEncryption(KEYS_SECRET),
      verifySeconds({ lifetimeSeconds: 3600, reloadSeconds }),
    );

  before(async () => {
    t = await createTestDatabase(kind);
    await createServices(t.database).movies.seedDemo();
    await createServices(t.database, { accounts: accountOptions(t.settings) }).users.createUser(
      USER,
    );
    first = await keySetApp(t, { token_keys_reload_seconds: reloadSeconds });
    // Instances behind one public address share its URL, the issuer of their tokens.
    second = await keySetApp(t, {
      token_keys_reload_seconds: reloadSeconds,
      public_url: first.url,
    });
  });
  after(async () => {
    await first.close();
    await second.close();
    await t.close();
  });

  it('signs with EdDSA by default, naming a published key; the private key is stored encrypted', async () => {
    const { access_token } = await passwordLogin(first.url);
    const header = headerOf(access_token);
    assert.equal(header.alg, 'EdDSA');
    const response = await fetch(`${first.url}/.well-known/jwks.json`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'public, max-age=300');
    const { keys } = (await response.json()) as { keys: Record<string, string>[] };
    const published = keys.find((key) => key.kid === header.kid);
    assert.ok(published !== undefined, 'the key that signed is published');
    assert.deepEqual(Object.keys(published).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    assert.equal(published.crv, 'Ed25519');
    assert.equal(published.use, 'sig');

    const [row] = await t.database.db.select().from(signingKeys);
    assert.ok(row !== undefined);
    assert.doesNotMatch(row.private_key_encrypted, /PRIVATE KEY/);
    assert.throws(
      () =>
        new KeyEncryption('another secret, just as long as it must be').decrypt(
          row.kid,
          row.private_key_encrypted,
        ),
      /cannot decrypt/,
    );
  });

  it("jose's remote JWK set verifies a token before and after a rotation", async () => {
    const jwks = createRemoteJWKSet(new URL(`${first.url}/.well-known/jwks.json`), {
      cooldownDuration: 0,
    });
    const options = { issuer: first.url, audience: 'myapi', algorithms: ['EdDSA'] };
    const earlier = (await passwordLogin(first.url)).access_token;
    const verified = await jwtVerify(earlier, jwks, options);
    assert.equal(verified.payload.email, USER.email);

    const kid = await rotate();
    await eventually('the instance signs with the new key', async () => {
      return headerOf((await passwordLogin(first.url)).access_token).kid === kid;
    });
    const afterRotation = (await passwordLogin(first.url)).access_token;
    assert.notEqual(headerOf(afterRotation).kid, headerOf(earlier).kid);
    assert.equal((await jwtVerify(afterRotation, jwks, options)).payload.email, USER.email);
    // The key that signed before keeps verifying, at the server and for jose.
    assert.equal((await jwtVerify(earlier, jwks, options)).payload.email, USER.email);
    assert.equal((await movie(first.url, earlier)).status, 200);
    assert.equal((await movie(first.url, afterRotation)).status, 200);
  });

  it('a rotation by one instance reaches the other without a restart', async () => {
    const kid = await rotate();
    await eventually('the second instance signs with the new key', async () => {
      return headerOf((await passwordLogin(second.url)).access_token).kid === kid;
    });
    const token = (await passwordLogin(second.url)).access_token;
    await eventually('the first instance accepts it', async () => {
      return (await movie(first.url, token)).status === 200;
    });
  });

  it('retiring a key refuses the tokens it signed at once and unpublishes it', async () => {
    const old = (await passwordLogin(first.url)).access_token;
    const oldKid = String(headerOf(old).kid);
    const service = new SigningKeyService(t.database);
    assert.equal(
      await service.retire(oldKid),
      'signing',
      'the signing key is retired by a rotation',
    );
    const newKid = await rotate();
    assert.equal(await service.retire(oldKid), 'retired');
    assert.equal(await service.retire(oldKid), 'unknown');
    await eventually('both instances refuse the retired key', async () => {
      const statuses = await Promise.all([movie(first.url, old), movie(second.url, old)]);
      return statuses.every((response) => response.status === 401);
    });
    const { keys } = (await (await fetch(`${second.url}/.well-known/jwks.json`)).json()) as {
      keys: { kid: string }[];
    };
    assert.ok(!keys.some((key) => key.kid === oldKid));
    assert.ok(keys.some((key) => key.kid === newKid));
    const listed = await service.list();
    assert.equal(listed.find((key) => key.kid === oldKid)?.status, 'retired');
    assert.equal(listed.find((key) => key.kid === newKid)?.status, 'signing');
  });

  it('publishes RFC 8414 metadata that oauth4webapi discovers and uses: password grant, refresh, revocation', async () => {
    const issuer = new URL(first.url);
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
    );
    assert.equal(as.issuer, first.url);
    assert.equal(as.token_endpoint, `${first.url}/token`);
    assert.equal(as.revocation_endpoint, `${first.url}/token/revoke`);
    assert.equal(as.introspection_endpoint, `${first.url}/token/introspect`);
    assert.equal(as.jwks_uri, `${first.url}/.well-known/jwks.json`);
    assert.deepEqual(as.grant_types_supported, ['password', 'refresh_token']);
    assert.deepEqual(as.scopes_supported, Object.keys(SCOPE_DESCRIPTIONS));
    assert.deepEqual(as.response_types_supported, []);
    assert.deepEqual(as.token_endpoint_auth_methods_supported, ['none']);

    const client: oauth.Client = { client_id: 'myapi-tests' };
    const auth = oauth.None();
    const credentials = { username: USER.email, password: USER.password };
    const login = await oauth.processGenericTokenEndpointResponse(
      as,
      client,
      await oauth.genericTokenEndpointRequest(
        as,
        client,
        auth,
        'password',
        new URLSearchParams(credentials),
        insecure,
      ),
    );
    assert.equal(login.token_type, 'bearer');
    assert.equal((await movie(first.url, login.access_token)).status, 200);
    assert.ok(login.refresh_token !== undefined);

    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, auth, login.refresh_token, insecure),
    );
    assert.equal((await movie(first.url, refreshed.access_token)).status, 200);
    assert.ok(refreshed.refresh_token !== undefined);

    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, client, auth, refreshed.refresh_token, insecure),
    );
    assert.equal((await movie(first.url, refreshed.access_token)).status, 401);

    // The errors are RFC 6749 section 5.2's application/json, which oauth4webapi reads (it
    // refuses any other content type), with the problem document's members kept.
    const refusal = async (answer: Promise<unknown>) => {
      const error = await answer.then(
        () => assert.fail('the token endpoint answered 200'),
        (thrown: unknown) => thrown,
      );
      assert.ok(error instanceof oauth.ResponseBodyError, String(error));
      assert.equal(error.response.headers.get('content-type'), 'application/json; charset=utf-8');
      return error;
    };
    const spent = await refusal(
      oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(as, client, auth, refreshed.refresh_token, insecure),
      ),
    );
    assert.equal(spent.status, 400);
    assert.equal(spent.error, 'invalid_grant');
    assert.equal(spent.error_description, 'Refresh token is invalid, expired or revoked');
    assert.deepEqual(spent.cause, {
      type: 'about:blank',
      title: 'Bad Request',
      status: 400,
      detail: 'Refresh token is invalid, expired or revoked',
      error: 'invalid_grant',
      error_description: 'Refresh token is invalid, expired or revoked',
    });

    const passwordGrant = (parameters: Record<string, string>) =>
      oauth.genericTokenEndpointRequest(
        as,
        client,
        auth,
        'password',
        new URLSearchParams(parameters),
        insecure,
      );
    const unavailable = await refusal(
      oauth.processGenericTokenEndpointResponse(
        as,
        client,
        await passwordGrant({ ...credentials, scope: 'users:admin' }),
      ),
    );
    assert.equal(unavailable.status, 400);
    assert.equal(unavailable.error, 'invalid_scope');

    // A wrong password is 401 invalid_grant with `WWW-Authenticate: Bearer` (docs/api.md): a
    // challenge, which oauth4webapi reports as such before it reads the body.
    const wrong = await oauth
      .processGenericTokenEndpointResponse(
        as,
        client,
        await passwordGrant({ ...credentials, password: 'not-the-password' }),
      )
      .then(
        () => assert.fail('a wrong password answered 200'),
        (thrown: unknown) => thrown,
      );
    assert.ok(wrong instanceof oauth.WWWAuthenticateChallengeError, String(wrong));
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.cause, [{ scheme: 'bearer', parameters: {} }]);
    assert.equal(wrong.response.headers.get('content-type'), 'application/json; charset=utf-8');
    const body = (await wrong.response.json()) as { error: string; detail: string };
    assert.equal(body.error, 'invalid_grant');
    assert.equal(typeof body.detail, 'string');
  });
});

describe('metadata without MYAPI_PUBLIC_URL', () => {
  let t: TestDatabase;
  let app: KeySetApp;
  before(async () => {
    t = await createTestDatabase('pglite');
    app = await keySetApp(t, { public_url: undefined, trust_proxy: '127.0.0.1' });
  });
  after(async () => {
    await app.close();
    await t.close();
  });

  it("takes absolute URLs from the request's host, and a trusted proxy's forwarded host and scheme", async () => {
    const direct = await app.app.inject({
      url: '/.well-known/oauth-authorization-server',
      headers: { host: 'api.example.test' },
    });
    assert.equal(direct.json<{ issuer: string }>().issuer, 'http://api.example.test');
    const proxied = await app.app.inject({
      url: '/.well-known/oauth-authorization-server',
      remoteAddress: '127.0.0.1',
      headers: {
        host: 'internal:8000',
        'x-forwarded-host': 'api.example.test',
        'x-forwarded-proto': 'https',
      },
    });
    assert.equal(
      proxied.json<{ jwks_uri: string }>().jwks_uri,
      'https://api.example.test/.well-known/jwks.json',
    );
    const untrusted = await app.app.inject({
      url: '/.well-known/oauth-authorization-server',
      remoteAddress: '192.0.2.7',
      headers: {
        host: 'internal:8000',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'https',
      },
    });
    assert.equal(untrusted.json<{ issuer: string }>().issuer, 'http://internal:8000');
  });
});
