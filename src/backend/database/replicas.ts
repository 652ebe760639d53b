// Read replicas: pools to streaming standbys, their health, and which one a read may use.
import { sql } from 'drizzle-orm';
import type pg from 'pg';
import type { Settings } from '../config.js';
import { redactDsn } from './dsn.js';
import { isDatabaseUnavailable } from './errors.js';
import type { DatabaseInstruments } from './instruments.js';
import { poolDatabase } from './pool.js';
import { queryRows, type ArrayQuery, type AppDb, type Database } from './types.js';

/** What a read runs on: the primary's or a replica's database. */
export interface ReadContext {
  readonly db: AppDb;
  readonly queryArrays: ArrayQuery;
}

/** Who reads and writes: the same key for a client's writes and its later reads (a user id). */
export type ReaderKey = string | number;

interface Replica {
  readonly label: string;
  readonly database: Database;
  /** Answered its last probe (or has not been probed yet). */
  healthy: boolean;
  /** The WAL position it had replayed at its last probe. */
  replayed: bigint;
}

/** A pg_lsn's text ('16/B374D848') as a number that compares. */
export function parseLsn(text: string): bigint {
  const [high = '0', low = '0'] = text.split('/');
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
}

/** The index the primary has in a read's order of targets. */
export const PRIMARY = -1;

/**
 * The replicas of one primary. Each is probed every `replica_check_ms` (reachable, and how far it
 * has replayed the primary's WAL). A reader that wrote gets its write's position remembered for
 * `read_your_writes_ms`: until a replica has replayed it, that reader's reads go to the primary.
 */
export class ReplicaSet {
  private readonly pending = new Map<ReaderKey, { lsn: bigint; until: number }>();
  private readonly timer: NodeJS.Timeout;
  private next = 0;
  private probing: Promise<void> | undefined;
  /**
   * A read on the primary found it unreachable: reads prefer the replicas until a probe of the
   * primary answers. Behind PgBouncer a read on a stopped primary waits for PgBouncer's
   * query_wait_timeout, which every read would otherwise pay again.
   */
  private primaryDown = false;
  private probingPrimary: Promise<void> | undefined;

  constructor(
    private readonly primary: ReadContext,
    private readonly replicas: Replica[],
    private readonly options: { checkMs: number; readYourWritesMs: number },
  ) {
    this.timer = setInterval(() => void this.probe(), options.checkMs);
    this.timer.unref();
    void this.probe();
  }

  get contexts(): ReadContext[] {
    return this.replicas.map((replica) => replica.database);
  }

  /** Probes every replica now (and resolves when done); probes never overlap. */
  probe(): Promise<void> {
    if (this.primaryDown) {
      this.probingPrimary ??= queryRows(this.primary.db, sql`select 1`).then(
        () => {
          this.primaryDown = false;
          this.probingPrimary = undefined;
        },
        () => {
          this.probingPrimary = undefined;
        },
      );
    }
    this.probing ??= Promise.all(this.replicas.map((replica) => this.probeOne(replica))).then(
      () => {
        this.probing = undefined;
      },
    );
    return this.probing;
  }

  private async probeOne(replica: Replica): Promise<void> {
    try {
      const [row] = await queryRows<{ lsn: string | null }>(
        replica.database.db,
        sql`select (case when pg_is_in_recovery() then pg_last_wal_replay_lsn()
                         else pg_current_wal_lsn() end)::text as lsn`,
      );
      replica.replayed = row?.lsn == null ? 0n : parseLsn(row.lsn);
      replica.healthy = true;
    } catch {
      replica.healthy = false;
    }
  }

  /**
   * The targets a read tries, in order (PRIMARY or a replica's index): a healthy replica that
   * has replayed the reader's last write, round robin; else the primary first. Every other target
   * follows, so a read still has somewhere to go when its first choice fails.
   */
  order(reader: ReaderKey | undefined): number[] {
    const needed = this.neededLsn(reader);
    const indexes = this.replicas.map((_, index) => index);
    const healthy = indexes.filter((index) => this.replicas[index]?.healthy === true);
    const down = indexes.filter((index) => !healthy.includes(index));
    const fresh = healthy.filter((index) => (this.replicas[index]?.replayed ?? 0n) >= needed);
    const stale = healthy.filter((index) => !fresh.includes(index));
    const start = this.next++ % Math.max(1, fresh.length);
    const rotated = [...fresh.slice(start), ...fresh.slice(0, start)];
    // With the primary down, a replica's older state beats no answer.
    if (this.primaryDown) return [...rotated, ...stale, PRIMARY, ...down];
    return [...rotated, PRIMARY, ...stale, ...down];
  }

  /** Primary first, then the healthy replicas: for reads that must be current when they can. */
  primaryFirst(): number[] {
    const healthy = this.replicas.flatMap((replica, index) => (replica.healthy ? [index] : []));
    return this.primaryDown ? [...healthy, PRIMARY] : [PRIMARY, ...healthy];
  }

  /** A read on the primary found it unreachable. */
  markPrimaryDown(): void {
    this.primaryDown = true;
  }

  private neededLsn(reader: ReaderKey | undefined): bigint {
    if (reader === undefined) return 0n;
    const pending = this.pending.get(reader);
    if (pending === undefined) return 0n;
    if (Date.now() > pending.until || this.replicas.every((r) => r.replayed >= pending.lsn)) {
      this.pending.delete(reader);
      return 0n;
    }
    return pending.lsn;
  }

  /** A read on this replica found it unreachable: no reads go there until a probe answers. */
  markDown(index: number): void {
    const replica = this.replicas[index];
    if (replica !== undefined) replica.healthy = false;
  }

  /** The reader committed a write: its reads wait for a replica that has replayed it. */
  async wrote(reader: ReaderKey | undefined): Promise<void> {
    if (reader === undefined || this.options.readYourWritesMs === 0) return;
    const [row] = await queryRows<{ lsn: string }>(
      this.primary.db,
      sql`select pg_current_wal_lsn()::text as lsn`,
    );
    if (row === undefined) return;
    this.pending.delete(reader);
    this.pending.set(reader, {
      lsn: parseLsn(row.lsn),
      until: Date.now() + this.options.readYourWritesMs,
    });
    // Bounded memory: the oldest entries go first (a Map keeps insertion order).
    const now = Date.now();
    for (const [key, entry] of this.pending) {
      if (entry.until >= now && this.pending.size <= 100_000) break;
      this.pending.delete(key);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.replicas.map((replica) => replica.database.close()));
  }
}

/** Opens a pool to each replica of MYAPI_DATABASE__REPLICAS; none when the list is empty. */
export function openReplicas(
  settings: Settings,
  primary: ReadContext,
  newPool: (url: string) => pg.Pool,
  instruments: DatabaseInstruments | undefined,
): ReplicaSet | undefined {
  const urls = settings.database.replicas
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');
  if (urls.length === 0) return undefined;
  const replicas = urls.map((url, index): Replica => {
    const pool = newPool(url);
    const label = redactDsn(url);
    const database = poolDatabase(
      pool,
      label,
      { kind: 'postgres', url },
      {
        prepared: settings.database.prepared_statements,
        // Named by position in MYAPI_DATABASE__REPLICAS: a label never carries a DSN.
        ...(instruments === undefined
          ? {}
          : { instruments: { into: instruments, as: `replica-${index + 1}` } }),
      },
    );
    return { label, database, healthy: true, replayed: 0n };
  });
  return new ReplicaSet(primary, replicas, {
    checkMs: settings.database.replica_check_ms,
    readYourWritesMs: settings.database.read_your_writes_ms,
  });
}

/**
 * One reader object (a CRUD class, say) per target, and the read that tries them in the order
 * the replica set gives: a target that turns out unreachable hands the read to the next, so a
 * replica that stops costs no error. Without replicas every read goes to the primary's object.
 */
export class ReadRouter<Reader> {
  private readonly onReplicas: Reader[];

  constructor(
    private readonly onPrimary: Reader,
    private readonly set: ReplicaSet | undefined,
    make: (context: ReadContext) => Reader,
  ) {
    this.onReplicas = set?.contexts.map(make) ?? [];
  }

  /** A read for `reader` (undefined: no read-your-writes need), on a replica where it may. */
  read<T>(reader: ReaderKey | undefined, work: (target: Reader) => Promise<T>): Promise<T> {
    if (this.set === undefined) return work(this.onPrimary);
    return this.tryInOrder(this.set.order(reader), work);
  }

  /** A read that must be current: the primary, or a replica only while the primary is down. */
  current<T>(work: (target: Reader) => Promise<T>): Promise<T> {
    if (this.set === undefined) return work(this.onPrimary);
    return this.tryInOrder(this.set.primaryFirst(), work);
  }

  /** After `reader`'s write committed: its next reads see it. */
  async wrote(reader: ReaderKey | undefined): Promise<void> {
    await this.set?.wrote(reader);
  }

  private async tryInOrder<T>(order: number[], work: (target: Reader) => Promise<T>): Promise<T> {
    let failure: unknown;
    for (const index of order) {
      const target = index === PRIMARY ? this.onPrimary : this.onReplicas[index];
      if (target === undefined) continue;
      try {
        return await work(target);
      } catch (error) {
        if (!isDatabaseUnavailable(error)) throw error;
        failure = error;
        if (index === PRIMARY) this.set?.markPrimaryDown();
        else this.set?.markDown(index);
      }
    }
    throw failure;
  }
}
