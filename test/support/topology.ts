// A private scale-out topology for the tests: a PostgreSQL primary, optionally a streaming standby
// made with pg_basebackup -R, and PgBouncer in transaction pooling mode in front of the primary.
// Debian's binaries, free ports of 127.0.0.1, mkdtemp directories; all stopped in an `after`
// hook. The machine's shared PostgreSQL is never touched.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { delay, freePort } from './process.js';
import { scaled } from './timeouts.js';

const PG_BIN = '/usr/lib/postgresql/15/bin';
const PGBOUNCER = '/usr/sbin/pgbouncer';
const run = promisify(execFile);
/** PostgreSQL and PgBouncer refuse to run as root: as root, they run as the postgres user. */
const AS_ROOT = process.getuid?.() === 0;

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([
    run('id', ['-u', 'postgres']).then(({ stdout }) => Number(stdout.trim())),
    run('id', ['-g', 'postgres']).then(({ stdout }) => Number(stdout.trim())),
  ]);
  return { uid, gid };
}

function pgTool(program: string, args: string[]) {
  const path = join(PG_BIN, program);
  const timeout = scaled(120_000);
  return AS_ROOT
    ? run('runuser', ['-u', 'postgres', '--', path, ...args], { timeout })
    : run(path, args, { timeout });
}

/** Runs one statement on a fresh connection. */
export async function query<Row extends pg.QueryResultRow>(
  dsn: string,
  text: string,
  values: unknown[] = [],
): Promise<Row[]> {
  const client = new pg.Client({ connectionString: dsn, connectionTimeoutMillis: scaled(5000) });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<Row>(text, values)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Polls until `check` resolves true, failing after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = scaled(30_000),
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

/** One PostgreSQL server (primary or standby) in a data directory of its own. */
export class PostgresNode {
  running = false;

  constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  get data(): string {
    return join(this.dir, 'data');
  }

  dsn(database = 'myapi'): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async start(): Promise<void> {
    // Port and socket go on the command line, so a standby's copy of the primary's files
    // carries none of them.
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
    await pgTool('pg_ctl', [
      'start',
      '-w',
      '-t',
      String(Math.round(scaled(60_000) / 1000)),
      '-D',
      this.data,
      '-l',
      join(this.dir, 'log'),
      '-o',
      options,
    ]);
    this.running = true;
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await pgTool('pg_ctl', ['stop', '-D', this.data, '-m', mode, '-w']);
  }
}

async function ownedTempDir(prefix: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (AS_ROOT) await run('chown', ['postgres:', dir]);
  return dir;
}

/** PgBouncer in front of one server, in transaction pooling mode, trusting local clients. */
export class Bouncer {
  private child: ChildProcess | undefined;
  log = '';

  constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  dsn(database = 'myapi'): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async start(target: PostgresNode, poolSize: number): Promise<void> {
    const ini = join(this.dir, 'pgbouncer.ini');
    const users = join(this.dir, 'userlist.txt');
    writeFileSync(users, '"postgres" ""\n');
    writeFileSync(
      ini,
      [
        '[databases]',
        `* = host=127.0.0.1 port=${target.port}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${this.port}`,
        'unix_socket_dir =',
        'auth_type = trust',
        'admin_users = postgres',
        `auth_file = ${users}`,
        'pool_mode = transaction',
        `default_pool_size = ${poolSize}`,
        'max_client_conn = 500',
        // A client waits this long for a server connection (120 s by default) before an error:
        // with the primary down, writes and logins should fail fast (503) instead of hanging.
        'query_wait_timeout = 2',
        // pg sends myapi's session limits in the startup message, which PgBouncer refuses
        // unless told to ignore them (the server then applies its own, set per database).
        'ignore_startup_parameters = statement_timeout,lock_timeout,idle_in_transaction_session_timeout',
        '',
      ].join('\n'),
    );
    const owner = AS_ROOT ? await postgresUser() : {};
    const child = spawn(PGBOUNCER, [ini], { ...owner, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (this.log += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.log += chunk));
    await waitFor('PgBouncer to accept connections', async () => {
      if (child.exitCode !== null) throw new Error(`pgbouncer exited:\n${this.log}`);
      await query(this.dsn(), 'select 1');
      return true;
    }).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${this.log}`);
    });
  }

  /** Transactions PgBouncer has passed to the database so far (its admin console's SHOW STATS). */
  async transactions(database = 'myapi'): Promise<number> {
    const rows = await query<{ database: string; total_xact_count: string }>(
      this.dsn('pgbouncer'),
      'show stats',
    );
    return Number(rows.find((row) => row.database === database)?.total_xact_count ?? 0);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise<boolean>((resolve) =>
      child.once('exit', () => {
        resolve(true);
      }),
    );
    child.kill('SIGINT');
    const gone = await Promise.race([exited, delay(scaled(5000)).then(() => false)]);
    if (!gone) child.kill('SIGKILL');
  }
}

/** Every topology's stop; the file's `after` hook runs those its tests did not. */
const started = new Set<() => Promise<void>>();

after(async () => {
  for (const stop of started) await stop();
});

export interface TopologyOptions {
  standby?: boolean;
  bouncer?: boolean;
  /** PgBouncer's server connections per database (default 20). */
  poolSize?: number;
}

export interface Topology {
  primary: PostgresNode;
  standby: PostgresNode | undefined;
  bouncer: Bouncer | undefined;
  /** Creates a database on the primary (replicated to the standby); returns its name. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts the topology; `stop` (or else an `after` hook of the file) stops it and removes its files.
 * The database `myapi` exists on the primary (and the standby) once this resolves.
 */
export async function startTopology(options: TopologyOptions = {}): Promise<Topology> {
  const dirs: string[] = [];
  const primary = new PostgresNode(await ownedTempDir('myapi-primary-'), await freePort());
  dirs.push(primary.dir);
  let standby: PostgresNode | undefined;
  let bouncer: Bouncer | undefined;
  const stop = async () => {
    started.delete(stop);
    await bouncer?.stop();
    await standby?.stop('immediate').catch(() => undefined);
    await primary.stop('immediate').catch(() => undefined);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  };
  started.add(stop);
  // initdb's pg_hba.conf trusts 127.0.0.1 for replication too; wal_level is replica by default.
  await pgTool('initdb', ['-D', primary.data, '-U', 'postgres', '-A', 'trust', '--no-sync']);
  await primary.start();
  const createDatabase = async (name: string) => {
    await query(primary.dsn('postgres'), `create database ${name}`);
    // What myapi sends in its startup message cannot pass PgBouncer: the server holds the limits.
    await query(primary.dsn('postgres'), `alter database ${name} set statement_timeout = '30s'`);
    return name;
  };
  await createDatabase('myapi');
  if (options.standby === true) {
    standby = new PostgresNode(await ownedTempDir('myapi-standby-'), await freePort());
    dirs.push(standby.dir);
    await pgTool('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(primary.port),
      '-U',
      'postgres',
      '-D',
      standby.data,
      '-R',
      '-X',
      'stream',
      '--no-sync',
    ]);
    await standby.start();
    const replica = standby;
    await waitFor('the standby to replay', async () => {
      const [row] = await query<{ ok: boolean }>(replica.dsn(), 'select pg_is_in_recovery() as ok');
      return row?.ok === true;
    });
  }
  if (options.bouncer === true) {
    bouncer = new Bouncer(await ownedTempDir('myapi-bouncer-'), await freePort());
    dirs.push(bouncer.dir);
    await bouncer.start(primary, options.poolSize ?? 20);
  }
  return { primary, standby, bouncer, createDatabase, stop };
}
