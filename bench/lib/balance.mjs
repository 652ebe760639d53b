#!/usr/bin/env node
// N separate `myapi serve` processes behind a round-robin TCP balancer: one harness target of
// bench/instances.mjs. See bench/README.md ("Many instances").
//
// usage: PORT=<port> node bench/lib/balance.mjs N
//
// Starts N instances (node dist/cli.js serve) on free ports of 127.0.0.1 with the environment
// it was given (MYAPI_DATABASE__DSN, MYAPI_TOKEN_KEY, ...), waits until each answers /ready,
// then listens on 127.0.0.1:$PORT and hands each new client connection to the next instance in
// turn, as an L4 load balancer does. wrk keeps its connections open, so they spread evenly.
// SIGTERM or SIGINT stops the instances. Empties the login throttle's counters first. N=1 runs behind the same balancer, so every figure
// carries the balancer's cost alike.
import net from 'node:net';
import { CLI, freePort, ROOT, sleep, spawnTracked, stopProcess } from './common.mjs';

const count = Number(process.argv[2]);
const port = Number(process.env.PORT);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(port) || port < 1) {
  console.error('usage: PORT=<port> node bench/lib/balance.mjs N');
  process.exit(2);
}

async function ready(url, child, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`an instance exited (${child.exitCode ?? child.signalCode}) before /ready`);
    }
    try {
      const response = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`an instance was not ready after ${timeoutMs} ms`);
}

// The harness's checks log in with wrong passwords on purpose, and the login throttle keeps
// counting in the database from one target to the next: each target starts from clean counters,
// as a fresh deployment would, so its POST /token is not refused (429) for the last one's checks.
{
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: process.env.MYAPI_DATABASE__DSN });
  await client.connect();
  await client.query('delete from myapi.login_failures');
  await client.end();
}

const instances = [];
for (let i = 0; i < count; i++) {
  const instancePort = await freePort();
  const child = spawnTracked(
    process.execPath,
    [CLI, 'serve', '--host', '127.0.0.1', '--port', String(instancePort)],
    { cwd: ROOT, env: process.env, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  instances.push({ child, port: instancePort });
}
await Promise.all(instances.map(({ child, port: p }) => ready(`http://127.0.0.1:${p}`, child)));

let next = 0;
const balancer = net.createServer((client) => {
  const { port: target } = instances[next];
  next = (next + 1) % instances.length;
  const upstream = net.connect({ host: '127.0.0.1', port: target });
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream).pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
});
balancer.listen(port, '127.0.0.1', () => {
  console.error(`balance: ${count} instance(s) behind 127.0.0.1:${port}`);
});

async function stop() {
  balancer.close();
  await Promise.all(instances.map(({ child }) => stopProcess(child)));
  process.exit(0);
}
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
