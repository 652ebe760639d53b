#!/usr/bin/env node
// What the per-request token check costs: CPU microseconds per call, in one process, of
//   (a) verifying the JWT alone (fast-jwt, with its cache), what the core release did;
//   (b) the whole check of a protected route: JWT, the login's state from memory, the scopes;
//   (c) the same with MYAPI_TOKEN_RECHECK_SECONDS=0: a query to PostgreSQL on every request.
// CPU time (process.cpuUsage) rather than wall time, so a busy machine blurs it less; (c) also
// reports wall time per call, one call at a time, since its cost is mostly the round trip.
//
// usage: npm run build && node bench/auth-check.mjs [--calls N]
import { accountOptions } from '../dist/app.js';
import { loadSettings } from '../dist/backend/config.js';
import { migrate, openDatabase } from '../dist/backend/database.js';
import { createServices } from '../dist/services/index.js';
import { TokenCodec } from '../dist/services/tokens.js';
import { build, commandLine, freshDatabase, runMain, tokenKey } from './lib/common.mjs';

const USAGE = `usage: npm run build && node bench/auth-check.mjs [options]
  --calls N   calls of each check (default 200000)
env: BENCH_PG_DSN (admin DSN of the local PostgreSQL server)`;

const CALLS = commandLine('auth-check', USAGE, {
  calls: { type: 'string', default: '200000' },
}).int('calls', 1);
const USER = { name: 'bench', email: 'bench@myapi.com', password: 'a bench passphrase' };

function cpuMicros(work, calls) {
  const start = process.cpuUsage();
  work(calls);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / calls;
}

async function cpuMicrosAsync(work, calls) {
  const start = process.cpuUsage();
  const began = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await work();
  const wallNs = Number(process.hrtime.bigint() - began);
  const used = process.cpuUsage(start);
  return { cpu: (used.user + used.system) / calls, wall: wallNs / 1000 / calls };
}

async function services(dsn, key, recheckSeconds) {
  const { settings } = loadSettings({
    env: {
      MYAPI_DATABASE__DSN: dsn,
      MYAPI_TOKEN_KEY: key,
      MYAPI_TOKEN_RECHECK_SECONDS: String(recheckSeconds),
    },
    cwd: '/nonexistent',
  });
  const database = await openDatabase(settings, { role: 'tool', poolMax: 4 });
  return {
    database,
    services: createServices(database, {
      tokenKey: key,
      tokenExpireMinutes: 60,
      ...accountOptions(settings),
    }),
  };
}

runMain(async () => {
  build();
  const name = `myapi_bench_auth_${process.pid}`;
  const dsn = await freshDatabase(name);
  const key = tokenKey();
  {
    // A long interval keeps the state in memory for the whole loop; at the default 1 s a
    // process pays one query per login per second on top, shared by that second's requests.
    const cached = await services(dsn, key, 300);
    await migrate(cached.database.db);
    await cached.services.users.createUser(USER);
    const token = await cached.services.auth.token(
      { username: USER.email, password: USER.password },
      { address: '127.0.0.1' },
    );
    const header = `Bearer ${token.access_token}`;
    const required = ['movies:read'];

    const codec = new TokenCodec(key, 60);
    // Warm both paths (JIT, fast-jwt's cache, the session state) before measuring.
    for (let i = 0; i < 20_000; i++) codec.verify(token.access_token);
    await cached.services.auth.authenticate(header, required);
    for (let i = 0; i < 20_000; i++) cached.services.auth.authenticate(header, required);

    const jwtOnly = cpuMicros((n) => {
      for (let i = 0; i < n; i++) codec.verify(token.access_token);
    }, CALLS);
    const wholeCheck = cpuMicros((n) => {
      for (let i = 0; i < n; i++) {
        const principal = cached.services.auth.authenticate(header, required);
        if (principal instanceof Promise) throw new Error('the state should be in memory');
      }
    }, CALLS);
    await cached.database.close();

    const uncached = await services(dsn, key, 0);
    const queryCalls = Math.min(CALLS, 5_000);
    for (let i = 0; i < 500; i++) await uncached.services.auth.authenticate(header, required);
    const everyRequest = await cpuMicrosAsync(
      () => uncached.services.auth.authenticate(header, required),
      queryCalls,
    );
    await uncached.database.close();

    const f = (n) => n.toFixed(2);
    console.log(`per-request token check, ${CALLS} calls (${queryCalls} with a query), PostgreSQL`);
    console.log(`  (a) JWT verification alone (core release):         ${f(jwtOnly)} us CPU`);
    console.log(`  (b) whole check, login state from memory (default): ${f(wholeCheck)} us CPU`);
    console.log(`      added by the login check: ${f(wholeCheck - jwtOnly)} us CPU per request`);
    console.log(
      `  (c) whole check, MYAPI_TOKEN_RECHECK_SECONDS=0:    ${f(everyRequest.cpu)} us CPU in this process, ${f(everyRequest.wall)} us wall (one at a time, plus PostgreSQL's own CPU)`,
    );
  }
});
