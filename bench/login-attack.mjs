#!/usr/bin/env node
// The login throttle under a scripted attack: how many guesses get their password checked,
// how many are turned away with 429, and whether the real user still gets in. See
// bench/README.md.
//
// usage: node bench/login-attack.mjs [--duration S] [--attackers N] [--no-build]
//
// Two myapi processes serve one fresh PostgreSQL database (myapi_bench_attack) and trust
// X-Forwarded-For, so one machine can play many client addresses. Three scenarios, each
// --duration seconds, each against a victim account of its own:
//   pair:   N attackers guess from one address;
//   spread: N attackers guess, every guess from a new address;
//   spray:  N attackers from one address guess one password for a new account each time.
// Throughout, the real user logs in every second from the address it used before the attack
// (known) and from a new address each time (a stranger to the account).
import path from 'node:path';
import {
  build,
  commandLine,
  freshDatabase,
  myapi,
  RESULTS_DIR,
  rel,
  runMain,
  serverEnv,
  sleep,
  startServer,
  stopProcess,
  textTable,
  tokenKey,
  waitReady,
  writeJson,
  tempDir,
} from './lib/common.mjs';

const DATABASE = 'myapi_bench_attack';
const PASSWORD = 'the real passphrase 42';

const USAGE = `usage: node bench/login-attack.mjs [options]
  --duration S    seconds of each scenario (default 30)
  --attackers N   concurrent attackers (default 4)
  --no-build      do not run \`npm run build\` first
env: BENCH_PG_DSN (admin DSN of the local PostgreSQL server)`;

const { values, int } = commandLine('login-attack', USAGE, {
  duration: { type: 'string', default: '30' },
  attackers: { type: 'string', default: '4' },
  'no-build': { type: 'boolean', default: false },
});
const DURATION_MS = int('duration', 1) * 1000;
const ATTACKERS = int('attackers', 1);

let addressSerial = 0;
function newAddress() {
  addressSerial += 1;
  return `10.${(addressSerial >> 16) & 255}.${(addressSerial >> 8) & 255}.${addressSerial & 255}`;
}

async function login(server, username, password, address) {
  const response = await fetch(`${server.baseUrl}/token`, {
    method: 'POST',
    headers: { 'x-forwarded-for': address },
    body: new URLSearchParams({ username, password }),
  });
  await response.arrayBuffer();
  return { status: response.status, retryAfter: Number(response.headers.get('retry-after') ?? 0) };
}

async function scenario(servers, name, victim, guess) {
  const home = '192.0.2.1';
  const first = await login(servers[0], victim, PASSWORD, home);
  if (first.status !== 200) throw new Error(`${name}: the victim cannot log in before the attack`);
  const stats = { checked: 0, refused: 0, other: 0, maxRetryAfter: 0 };
  const user = { known: [0, 0], stranger: [0, 0] };
  const deadline = performance.now() + DURATION_MS;
  const attacker = async (index) => {
    for (let i = 0; performance.now() < deadline; i++) {
      const { username, address } = guess(index, i);
      const server = servers[(index + i) % servers.length];
      const result = await login(server, username, `wrong-${index}-${i}`, address);
      if (result.status === 401) stats.checked++;
      else if (result.status === 429) {
        stats.refused++;
        stats.maxRetryAfter = Math.max(stats.maxRetryAfter, result.retryAfter);
      } else stats.other++;
    }
  };
  const realUser = async () => {
    while (performance.now() < deadline) {
      await sleep(1000);
      const known = await login(servers[1], victim, PASSWORD, home);
      user.known[known.status === 200 ? 0 : 1]++;
      const stranger = await login(servers[0], victim, PASSWORD, newAddress());
      user.stranger[stranger.status === 200 ? 0 : 1]++;
    }
  };
  await Promise.all([...Array.from({ length: ATTACKERS }, (_, i) => attacker(i)), realUser()]);
  const seconds = DURATION_MS / 1000;
  return {
    scenario: name,
    guesses_checked: stats.checked,
    guesses_refused: stats.refused,
    other_statuses: stats.other,
    checked_per_second: stats.checked / seconds,
    max_retry_after_s: stats.maxRetryAfter,
    user_known_address_ok: `${user.known[0]}/${user.known[0] + user.known[1]}`,
    user_new_address_ok: `${user.stranger[0]}/${user.stranger[0] + user.stranger[1]}`,
  };
}

runMain(async () => {
  if (!values['no-build']) build();
  const dsn = await freshDatabase(DATABASE);
  const env = serverEnv({
    MYAPI_DATABASE__DSN: dsn,
    MYAPI_TOKEN_KEY: tokenKey(),
    MYAPI_TRUST_PROXY: 'true',
    MYAPI_LOG_LEVEL: 'warn',
  });
  myapi(['migrate'], env);
  const victims = ['pair', 'spread', 'spray'].map((name) => `${name}-victim@myapi.com`);
  for (const email of victims) {
    myapi(['create-user', '--name', 'victim', '--email', email, '--password', PASSWORD], env);
  }
  const logDir = tempDir('myapi-attack-');
  const servers = [];
  for (let i = 0; i < 2; i++) {
    const server = await startServer({ env, logFile: path.join(logDir, `server-${i}.log`) });
    await waitReady(server, server.spawnedAt);
    servers.push(server);
  }
  const [pairVictim, spreadVictim, sprayVictim] = victims;
  const results = [
    await scenario(servers, 'pair: one address', pairVictim, () => ({
      username: pairVictim,
      address: '198.51.100.66',
    })),
    await scenario(servers, 'spread: a new address per guess', spreadVictim, () => ({
      username: spreadVictim,
      address: newAddress(),
    })),
    await scenario(servers, 'spray: one address, many accounts', sprayVictim, (index, i) => ({
      username: `nobody-${index}-${i}@myapi.com`,
      address: '198.51.100.77',
    })),
  ];
  for (const server of servers) await stopProcess(server);

  console.log(
    `\nlogin throttle under attack: ${ATTACKERS} attackers, ${DURATION_MS / 1000} s per scenario, 2 processes, one PostgreSQL database`,
  );
  console.log(
    textTable(
      [
        'scenario',
        'checked',
        'refused 429',
        'checked/s',
        'max Retry-After',
        'user, known address',
        'user, new address',
      ],
      results.map((r) => [
        r.scenario,
        r.guesses_checked,
        r.guesses_refused,
        r.checked_per_second.toFixed(2),
        `${r.max_retry_after_s} s`,
        r.user_known_address_ok,
        r.user_new_address_ok,
      ]),
      [1, 2, 3, 4],
    ),
  );
  const file = path.join(RESULTS_DIR, 'login-attack.json');
  writeJson(file, { date: new Date().toISOString(), attackers: ATTACKERS, results });
  console.log(`written: ${rel(file)}`);
});
