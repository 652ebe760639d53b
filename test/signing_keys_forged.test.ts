// Every forged-token case of the contract suites (auth.test.ts) refused for EdDSA and ES256 tokens
// too: alg switched to HS256 with the public key as the secret, alg none, a kid that names another
// or no known key, expired, signed by another key; tokens signed right are the control.
import assert from 'node:assert/strict';
import { createHmac, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { importPKCS8, SignJWT, type JWTPayload } from 'jose';
import { KeyEncryption, type SigningAlgorithm } from '../src/services/keys/crypto.js';
import { accountOptions, createServices } from '../src/services/index.js';
import { SigningKeyService } from '../src/services/signing_keys.js';
import {
  createTestDatabase,
  describeEachDatabase,
  type TestDatabase,
} from './support/databases.js';
import { USER, form } from './support/http.js';
import { delay, scaled } from './support/process.js';
import {
  claimsOf,
  headerOf,
  KEYS_SECRET,
  keySetApp,
  privateKeys,
  type KeySetApp,
} from './support/keys.js';

function b64(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

const OTHER: Record<SigningAlgorithm, SigningAlgorithm> = { EdDSA: 'ES256', ES256: 'EdDSA' };

function pemPair(algorithm: SigningAlgorithm): string {
  const { privateKey } =
    algorithm === 'EdDSA'
      ? generateKeyPairSync('ed25519')
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

describeEachDatabase('forged asymmetric tokens', (kind) => {
  for (const algorithm of ['EdDSA', 'ES256'] as const) {
    describe(algorithm, () => {
      let t: TestDatabase;
      let server: KeySetApp;
      let good: string;
      let kid: string;
      let claims: JWTPayload;

      before(async () => {
        t = await createTestDatabase(kind);
        await createServices(t.database).movies.seedDemo();
        await createServices(t.database, { accounts: accountOptions(t.settings) }).users.createUser(
          USER,
        );
        server = await keySetApp(t, { token_algorithm: algorithm, token_keys_reload_seconds: 1 });
        const response = await server.app.inject({
          method: 'POST',
          url: '/token',
          ...form({ username: USER.email, password: USER.password }),
        });
        good = response.json<{ access_token: string }>().access_token;
        kid = String(headerOf(good).kid);
        claims = claimsOf(good);
      });
      after(async () => {
        await server.close();
        await t.close();
      });

      const getMovie = (token: string) =>
        server.app.inject({ url: '/movies/1', headers: { authorization: `Bearer ${token}` } });
      const refused = async (token: string, detail = 'Could not validate credentials') => {
        const response = await getMovie(token);
        assert.equal(response.statusCode, 401, token);
        assert.match(String(response.headers['www-authenticate']), /^Bearer error="invalid_token"/);
        assert.equal(response.json<{ detail: string }>().detail, detail);
      };
      /** Signs with the given PKCS#8 key (jose, independent of the server's fast-jwt). */
      const signWith = async (
        pem: string,
        alg: SigningAlgorithm,
        payload: JWTPayload,
        header: Record<string, unknown> = {},
      ) =>
        new SignJWT(payload)
          .setProtectedHeader({ alg, typ: 'JWT', kid, ...header })
          .sign(await importPKCS8(pem, alg));
      const realKey = async () => {
        const pem = (await privateKeys(t)).get(kid);
        assert.ok(pem !== undefined);
        return pem;
      };

      it('signs with the configured algorithm; a token signed right with the real key is accepted (the control)', async () => {
        assert.equal(headerOf(good).alg, algorithm);
        assert.equal((await getMovie(good)).statusCode, 200);
        const now = Math.floor(Date.now() / 1000);
        const resigned = await signWith(await realKey(), algorithm, {
          ...claims,
          iat: now,
          exp: now + 60,
        });
        assert.equal((await getMovie(resigned)).statusCode, 200);
      });

      it('refuses alg switched to HS256 with the public key as the HMAC secret', async () => {
        const jwks = await server.app.inject({ url: '/.well-known/jwks.json' });
        const jwk = jwks
          .json<{ keys: Record<string, string>[] }>()
          .keys.find((key) => key.kid === kid);
        assert.ok(jwk !== undefined);
        const pem = createPublicKey({ key: jwk, format: 'jwk' })
          .export({ format: 'pem', type: 'spki' })
          .toString();
        for (const secret of [pem, JSON.stringify(jwk), jwk.x ?? '']) {
          const unsigned = `${b64({ alg: 'HS256', typ: 'JWT', kid })}.${b64(claims)}`;
          await refused(
            `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`,
          );
        }
      });

      it('refuses alg none, with and without the kid', async () => {
        await refused(`${b64({ alg: 'none', typ: 'JWT', kid })}.${b64(claims)}.`);
        await refused(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`);
      });

      it('refuses a kid that names another key of the set, no known key, or is not a string', async () => {
        const pem = await realKey();
        const otherKid = await new SigningKeyService(t.database).rotate(
          OTHER[algorithm],
          new KeyEncryption(KEYS_SECRET),
          3600,
        );
        // The other key is known to the server (it reloads on an unknown kid, or within 1 s).
        const deadline = Date.now() + scaled(10_000);
        for (;;) {
          const { keys } = (await server.app.inject({ url: '/.well-known/jwks.json' })).json<{
            keys: { kid: string }[];
          }>();
          if (keys.some((key) => key.kid === otherKid)) break;
          assert.ok(Date.now() < deadline, 'the rotated key was never loaded');
          await getMovie(await signWith(pem, algorithm, claims, { kid: otherKid }));
          await delay(50);
        }
        // Signed by the real key, but naming the other one: its signature cannot match.
        await refused(await signWith(pem, algorithm, claims, { kid: otherKid }));
        await refused(await signWith(pem, algorithm, claims, { kid: 'no-such-key' }));
        await refused(await signWith(pem, algorithm, claims, { kid: '../../etc/passwd' }));
        const unsigned = `${b64({ alg: algorithm, typ: 'JWT', kid: 7 })}.${b64(claims)}`;
        await refused(`${unsigned}.${good.split('.')[2] ?? ''}`);
        // The real token's header and signature with another kid.
        const [, payload, signature] = good.split('.');
        await refused(
          `${b64({ ...headerOf(good), kid: otherKid })}.${payload ?? ''}.${signature ?? ''}`,
        );
      });

      it('refuses an expired token signed by the real key, saying so', async () => {
        const now = Math.floor(Date.now() / 1000);
        const expired = await signWith(await realKey(), algorithm, {
          ...claims,
          iat: now - 7200,
          exp: now - 3600,
        });
        await refused(expired, 'Token has expired');
      });

      it('refuses a token signed by another key under the real kid, or with a changed payload', async () => {
        await refused(await signWith(pemPair(algorithm), algorithm, claims));
        await refused(await signWith(pemPair(OTHER[algorithm]), OTHER[algorithm], claims));
        const [header, , signature] = good.split('.');
        await refused(`${header ?? ''}.${b64({ ...claims, sub: '999' })}.${signature ?? ''}`);
      });

      it('refuses the real key with another issuer or audience, or without exp', async () => {
        const pem = await realKey();
        const now = Math.floor(Date.now() / 1000);
        for (const changed of [
          { iss: 'someone-else' },
          { aud: 'another-api' },
          { exp: undefined },
        ]) {
          await refused(await signWith(pem, algorithm, { ...claims, iat: now, ...changed }));
        }
      });
    });
  }
});
