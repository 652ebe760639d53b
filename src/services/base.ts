/** The base classes every service builds on: AppService (rules, transactions) and AppCRUD (queries). */
import {
  Column,
  fillPlaceholders,
  is,
  getTableColumns,
  sql,
  type InferInsertModel,
  type InferSelectModel,
  type SQL,
  type SQLWrapper,
} from 'drizzle-orm';
import DataLoader from 'dataloader';
import { getTableConfig, type PgColumn, type PgTable } from 'drizzle-orm/pg-core';
import {
  isDatabaseUnavailable,
  queryRows,
  type AppDb,
  type AppTx,
  type ArrayQuery,
  type Database,
  type Executor,
  writesTogether,
} from '../backend/database.js';

/**
 * What every service is built from: the parts of the database it may use (a Database is one).
 * One per application, shared by all services.
 */
export type ServiceContext = Pick<Database, 'db' | 'queryArrays' | 'listen' | 'replicas'>;

/**
 * A service holds the rules of one part of the application and talks to the database only
 * through its CRUD classes. `transaction` lets it compose several CRUD writes into one unit.
 */
export abstract class AppService {
  protected readonly db: AppDb;

  constructor(protected readonly context: ServiceContext) {
    this.db = context.db;
  }

  protected transaction<T>(work: (tx: AppTx) => Promise<T>): Promise<T> {
    return this.db.transaction(work);
  }

  /**
   * Writes its CRUD classes built and did not run, as one statement: atomic like a transaction,
   * in one round trip. Each write sees the database as before the statement, not the others.
   */
  protected async writeTogether(writes: readonly SQLWrapper[]): Promise<void> {
    await this.db.execute(writesTogether(writes));
  }
}

type OrderBy = SQL | PgColumn;

/** What a hot read selects: columns and computed SQL, under the names its rows give them. */
type Selection = Record<string, PgColumn | SQL>;

/** The fields of a selection that are columns. */
type ColumnsOf<Fields extends Selection> = {
  [Key in keyof Fields]: Fields[Key] extends PgColumn ? Key : never;
}[keyof Fields] &
  string;

/** A row of a selection: each column's type as the model declares it; computed SQL as text. */
export type RowOf<Fields extends Selection> = {
  [Key in keyof Fields]: Fields[Key] extends PgColumn
    ? Fields[Key]['_']['notNull'] extends true
      ? Fields[Key]['_']['data']
      : Fields[Key]['_']['data'] | null
    : string;
};

/** A select with `sql.placeholder` parameters. */
interface PreparableSelect {
  toSQL(): { sql: string; params: unknown[] };
}

/** A failure as an Error, as DataLoader wants one per key that failed. */
function asError(failure: unknown): Error {
  return failure instanceof Error ? failure : new Error(String(failure));
}

/**
 * A DataLoader that only joins the callers of one key within an event-loop turn: its cache is
 * emptied when the turn's batches go out (when the turn's I/O is done), so every caller gets the
 * answer of a query that started after it asked. Nothing is cached beyond the turn.
 */
function turnLoader<K, V, C = K>(
  batch: DataLoader.BatchLoadFn<K, V>,
  options: { maxBatchSize?: number; cacheKeyFn?: (key: K) => C } = {},
): DataLoader<K, V, C> {
  const sameTurn = new Map<C, Promise<V>>();
  return new DataLoader<K, V, C>(batch, {
    ...options,
    cacheMap: sameTurn,
    batchScheduleFn: (dispatch) =>
      setImmediate(() => {
        sameTurn.clear();
        dispatch();
      }),
  });
}

/**
 * The only place that builds queries. Every method takes an optional transaction, and returns
 * plain objects in the table's shape, never a driver row.
 */

export class AppCRUD<TTable extends PgTable> {
  protected readonly db: AppDb;
  private readonly queryArrays: ArrayQuery;

  constructor(
    context: Pick<ServiceContext, 'db' | 'queryArrays'>,
    protected readonly table: TTable,
  ) {
    this.db = context.db;
    this.queryArrays = context.queryArrays;
  }

  protected on(tx?: Executor): Executor {
    return tx ?? this.db;
  }

  /** The table as Drizzle's builders take it; the generic parameter only types the results. */
  protected get target(): PgTable {
    return this.table;
  }

  async getOne(where: SQL, tx?: Executor): Promise<InferSelectModel<TTable> | undefined> {
    const rows = await this.on(tx).select().from(this.target).where(where).limit(1);
    return rows[0] as InferSelectModel<TTable> | undefined;
  }

  async getAll(
    where?: SQL,
    orderBy: OrderBy[] = [],
    tx?: Executor,
  ): Promise<InferSelectModel<TTable>[]> {
    const rows = await this.on(tx)
      .select()
      .from(this.target)
      .where(where)
      .orderBy(...orderBy);
    return rows as InferSelectModel<TTable>[];
  }

  async addOne(values: InferInsertModel<TTable>, tx?: Executor): Promise<InferSelectModel<TTable>> {
    const [row] = await this.addAll([values], tx);
    if (row === undefined) throw new Error('insert returned no row');
    return row;
  }

  async addAll(
    values: InferInsertModel<TTable>[],
    tx?: Executor,
  ): Promise<InferSelectModel<TTable>[]> {
    if (values.length === 0) return [];
    const rows = await this.on(tx).insert(this.target).values(values).returning();
    return rows as InferSelectModel<TTable>[];
  }

  /**
   * A hot read: Drizzle writes the SQL of `query(fields)` once, the driver runs it in array mode,
   * and a mapper built from `fields` makes the objects, which costs less per row than Drizzle's
   * own prepared path on the same query (bench/ has the figures). A field is a column of the table (mapped as Drizzle
   * maps it, so a NUMERIC comes back as a number) or computed SQL (kept as the driver's string).
   *
   * The statement is named: PostgreSQL parses it once per connection and, after five calls, may
   * keep one generic plan for all values. Write the query so that one plan is right for every
   * value (a key lookup; a range on an index that also gives the order), because that plan is
   * chosen without knowing how selective the values will be.
   */
  protected preparedRows<Fields extends Selection>(
    name: string,
    fields: Fields,
    query: (fields: Fields) => PreparableSelect,
  ): (values: Record<string, unknown>) => Promise<RowOf<Fields>[]> {
    const run = this.queryArrays;
    const { sql: text, params } = query(fields).toSQL();
    const keys = Object.keys(fields);
    const columns = Object.values(fields).map((field) => (is(field, Column) ? field : undefined));
    const toRow = (values: unknown[]) => {
      const row: Record<string, unknown> = {};
      for (let i = 0; i < keys.length; i++) {
        const value = values[i];
        const column = columns[i];
        row[keys[i] as string] =
          value === null || column === undefined ? value : column.mapFromDriverValue(value);
      }
      return row as RowOf<Fields>;
    };
    return async (values) => (await run(name, text, fillPlaceholders(params, values))).map(toRow);
  }

  /** A `preparedRows` statement whose only answer is whether it found a row. */
  protected preparedExists<Fields extends Selection>(
    name: string,
    fields: Fields,
    query: (fields: Fields) => PreparableSelect,
  ): (values: Record<string, unknown>) => Promise<boolean> {
    const rows = this.preparedRows(name, fields, query);
    return async (values) => (await rows(values)).length > 0;
  }

  /**
   * `read`, with the calls of one event-loop turn that pass the same values sharing one query:
   * a page that many clients ask for at once is read once for all of them. Like
   * preparedLookup's batches, the query starts when the turn's I/O is done, so nothing is
   * cached: each caller gets the answer of a query that started after it asked, and a failed
   * query fails each of them. The callers share the rows, so they must not change them.
   */
  protected sameTurn<Values extends Record<string, unknown>, Rows>(
    read: (values: Values) => Promise<Rows>,
  ): (values: Values) => Promise<Rows> {
    // One batch per turn: each distinct set of values one query, its failure its callers' only.
    const loader = turnLoader<Values, Rows, string>(
      (asked) => Promise.all(asked.map((values) => read(values).catch(asError))),
      { cacheKeyFn: (values) => JSON.stringify(values) },
    );
    return (values) => loader.load(values);
  }

  /**
   * A hot lookup by a unique key (`keyField`, one of the columns in `fields`): one row or
   * undefined. Lookups asked for in the same turn of the event loop share one query (DataLoader,
   * dispatched when the turn's I/O is done): `= $1` for a single key, `= any($1)` for up to
   * `maxKeys`. Both are prepared statements (`name` and `name_any`) with one plan for every
   * value, the key's index. Under load a turn hands the server every request that arrived since
   * the last one, and a key lookup's cost is mostly its round trip, so they share one.
   */
  protected preparedLookup<Fields extends Selection, KeyField extends ColumnsOf<Fields>>(
    name: string,
    fields: Fields,
    keyField: KeyField,
    maxKeys = 100,
  ): (key: RowOf<Fields>[KeyField]) => Promise<RowOf<Fields> | undefined> {
    type Key = RowOf<Fields>[KeyField];
    type Row = RowOf<Fields>;
    const column = fields[keyField];
    if (!is(column, Column)) throw new Error(`${name}: the key ${keyField} is not a column`);
    const where = (condition: SQL) => (selected: Fields) =>
      this.db.select(selected).from(this.target).where(condition);
    const one = this.preparedRows(name, fields, where(sql`${column} = ${sql.placeholder('key')}`));
    const many = this.preparedRows(
      `${name}_any`,
      fields,
      where(sql`${column} = any(${sql.placeholder('keys')})`),
    );
    const loader = turnLoader<Key, Row | undefined>(
      async (keys) => {
        if (keys.length === 1) return [(await one({ key: keys[0] }))[0]];
        let rows: Row[];
        try {
          rows = await many({ keys });
        } catch (error) {
          if (isDatabaseUnavailable(error)) throw error;
          // One key the statement refuses must not fail the others asked for in the same turn:
          // each key again on its own, so only its own caller sees its error.
          return Promise.all(keys.map((key) => one({ key }).then(([row]) => row, asError)));
        }
        const byKey = new Map(rows.map((row) => [row[keyField], row]));
        return keys.map((key) => byKey.get(key));
      },
      { maxBatchSize: maxKeys },
    );
    return (key) => loader.load(key);
  }

  /**
   * Selects from a set-returning (table-valued) SQL function of the table's schema, e.g.
   * `myapi.movies_between(1990, 1999)`, mapping its columns into the table's shape (so a
   * NUMERIC comes back as a number exactly as from a plain select).
   */
  async selectFromFunction(
    name: string,
    args: readonly unknown[],
    tx?: Executor,
  ): Promise<InferSelectModel<TTable>[]> {
    const { schema } = getTableConfig(this.table);
    const columns = Object.entries(getTableColumns(this.table)) as [string, PgColumn][];
    const list = sql.join(
      columns.map(([, column]) => sql.identifier(column.name)),
      sql`, `,
    );
    const fn =
      schema === undefined
        ? sql.identifier(name)
        : sql`${sql.identifier(schema)}.${sql.identifier(name)}`;
    const call = sql`${fn}(${sql.join(
      args.map((arg) => sql`${arg}`),
      sql`, `,
    )})`;
    const rows = await queryRows<Record<string, unknown>>(
      this.on(tx),
      sql`select ${list} from ${call}`,
    );
    return rows.map(
      (row) =>
        Object.fromEntries(
          columns.map(([key, column]) => {
            const value = row[column.name];
            return [key, value === null ? null : column.mapFromDriverValue(value)];
          }),
        ) as InferSelectModel<TTable>,
    );
  }
}
