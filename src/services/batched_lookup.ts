/** The two queries of a lookup by key: for one key, and for several at once. */
export interface LookupQueries<Key, Row> {
  one: (key: Key) => Promise<Row[]>;
  many: (keys: Key[]) => Promise<Row[]>;
  /** The key a row answers (the rows of `many` come in any order). */
  keyOf: (row: Row) => Key;
  /** The most keys one query is given; more in one turn are split between queries. */
  maxKeys: number;
}

interface Waiter<Row> {
  resolve(row: Row | undefined): void;
  reject(error: unknown): void;
}

type Batch<Key, Row> = Map<Key, Waiter<Row>[]>;

/**
 * Lookups by a unique key that are asked for in the same turn of the event loop, answered by one
 * query. Under load a turn hands the server every request that arrived since the last one, and
 * each lookup would otherwise make its own round trip: the driver's work, a pool checkout and
 * PostgreSQL's per-statement work, which are most of what a key lookup costs (8 keys in one
 * query cost each about a sixth of a query of their own, on both sides). The batch runs when the
 * turn's I/O is done (setImmediate), so a lone request waits for nothing but its own turn, and
 * every lookup still reads the database after it was asked for: no row is cached.
 *
 * A key asked for twice in a turn is looked up once, and its callers share the row. A failed
 * query fails the lookups it answered, each with the query's error.
 */
export function batchedLookup<Key, Row>(
  queries: LookupQueries<Key, Row>,
): (key: Key) => Promise<Row | undefined> {
  const { one, many, keyOf, maxKeys } = queries;
  let pending: Batch<Key, Row> = new Map();

  /** Answers each waiter of `batch` from the rows `lookup` finds, or fails them all with its error. */
  const settle = async (batch: Batch<Key, Row>, lookup: () => Promise<Row[]>) => {
    try {
      const byKey = new Map((await lookup()).map((row) => [keyOf(row), row]));
      for (const [key, waiters] of batch) {
        const row = byKey.get(key);
        for (const waiter of waiters) waiter.resolve(row);
      }
    } catch (error) {
      for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(error);
    }
  };

  const query = (batch: Batch<Key, Row>) => {
    const keys = [...batch.keys()];
    void settle(batch, () => (keys.length === 1 ? one(keys[0] as Key) : many(keys)));
  };

  const run = () => {
    const batch = pending;
    pending = new Map();
    let chunk: Batch<Key, Row> = new Map();
    for (const [key, waiters] of batch) {
      chunk.set(key, waiters);
      if (chunk.size === maxKeys) {
        query(chunk);
        chunk = new Map();
      }
    }
    if (chunk.size > 0) query(chunk);
  };

  return (key) =>
    new Promise((resolve, reject) => {
      let waiters = pending.get(key);
      if (waiters === undefined) {
        if (pending.size === 0) setImmediate(run);
        waiters = [];
        pending.set(key, waiters);
      }
      waiters.push({ resolve, reject });
    });
}
