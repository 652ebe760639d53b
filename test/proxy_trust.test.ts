// MYAPI_TRUST_PROXY: only a trusted proxy's X-Forwarded-For moves request.ip, so the per-address throttle holds.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadSettings } from '../src/backend/config.js';
import { accountOptions, createServices } from '../src/services/index.js';
import { appOn, type AppOnDatabase } from './support/apps.js';
import {
  createTestDatabase,
  describeEachDatabase,
  type TestDatabase,
} from './support/databases.js';
import { form } from './support/http.js';

const TRUSTED = '10.0.0.0/8,loopback';

function settingsProblems(value: string): string[] {
  try {
    loadSettings({ env: { MYAPI_TRUST_PROXY: value }, cwd: '/nonexistent' });
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
}

describe('MYAPI_TRUST_PROXY validation', () => {
  it('refuses a hop count, pointing to addresses and CIDRs', () => {
    for (const hops of ['1', '2', '10']) {
      const [problem, ...rest] = settingsProblems(hops);
      assert.equal(rest.length, 0);
      assert.match(String(problem), /^MYAPI_TRUST_PROXY: a number of proxy hops/);
      assert.match(String(problem), /addresses or CIDRs/);
    }
  });

  it('takes true, false, addresses, CIDRs and named ranges; refuses anything else', () => {
    for (const good of ['true', 'false', '10.0.0.1', TRUSTED, '192.168.0.0/16, ::1, fc00::/7']) {
      assert.deepEqual(settingsProblems(good), [], good);
    }
    for (const bad of ['yes', '10.0.0.0/33', '10.0.0.1,', 'proxy.example.com', '1.2.3.4/8/8']) {
      const [problem] = settingsProblems(bad);
      assert.match(String(problem), /^MYAPI_TRUST_PROXY: must be false, true, or comma-separated/);
    }
  });
});

describeEachDatabase('proxy trust over HTTP', (kind) => {
  let t: TestDatabase;
  let server: AppOnDatabase;
  let serial = 0;
  /** A user of its own per test, so the tests never share throttle counters. */
  const newUser = async () => {
    serial += 1;
    const email = `proxied-${serial}@example.com`;
    await createServices(t.database, { accounts: accountOptions(t.settings) }).users.createUser({
      name: 'proxied',
      email,
      password: 'the right password 123',
    });
    return email;
  };
  const wrongLogin = (email: string, remoteAddress: string, headers: Record<string, string>) => {
    const body = form({ username: email, password: 'a wrong password' });
    return server.app.inject({
      method: 'POST',
      url: '/token',
      remoteAddress,
      payload: body.payload,
      headers: { ...body.headers, ...headers },
    });
  };

  before(async () => {
    t = await createTestDatabase(kind);
    server = await appOn(t, { trust_proxy: TRUSTED });
  });
  after(async () => {
    await server.app.close();
    await t.close();
  });

  it('a direct client cannot pick its address with X-Forwarded-For, Forwarded or X-Real-IP', async () => {
    const email = await newUser();
    const spoofs: Record<string, string>[] = [
      { 'x-forwarded-for': '198.51.100.1' },
      { 'x-forwarded-for': '198.51.100.2, 10.0.0.9' },
      { forwarded: 'for=198.51.100.3' },
      { 'x-real-ip': '198.51.100.4' },
      {
        'x-forwarded-for': '198.51.100.5',
        forwarded: 'for=198.51.100.5',
        'x-real-ip': '1.1.1.1',
      },
      { 'x-forwarded-for': '198.51.100.6' },
    ];
    const statuses: number[] = [];
    for (const headers of spoofs) {
      statuses.push((await wrongLogin(email, '203.0.113.5', headers)).statusCode);
    }
    // The pair (account + 203.0.113.5) has 5 free failures: a spoof that worked would make
    // each attempt a new pair, and the sixth would be another 401.
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
  });

  it("a trusted proxy's X-Forwarded-For names the client", async () => {
    const email = await newUser();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const response = await wrongLogin(email, '10.1.2.3', {
        // The client's hop, then another trusted proxy's.
        'x-forwarded-for': `198.51.100.${10 + i}, 10.200.0.1`,
      });
      statuses.push(response.statusCode);
    }
    // Seven clients with a failure each: no pair reaches its limit.
    assert.deepEqual(statuses, Array(7).fill(401));
    // One client behind the proxy, over and over: its own pair limit.
    const same: number[] = [];
    for (let i = 0; i < 6; i++) {
      same.push(
        (await wrongLogin(email, '127.0.0.1', { 'x-forwarded-for': '198.51.100.99' })).statusCode,
      );
    }
    assert.deepEqual(same, [401, 401, 401, 401, 401, 429]);
  });
});
