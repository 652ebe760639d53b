/** ResourceCRUD: the queries of a generated resource, on any table with an id, fields and a version. */
import { and, asc, eq, getTableColumns, gte, ilike, lte, sql, type SQL } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import type { Executor } from '../../backend/database.js';
import { AppCRUD, type ServiceContext } from '../base.js';
import {
  RANGE_TYPES,
  type FieldType,
  type Precondition,
  type ResourceId,
  type ResourceTable,
} from './types.js';

type Row = Record<string, unknown>;

/** A value as its column takes it: timestamps arrive as ISO 8601 text, their columns take Dates. */
function toColumn(type: FieldType, value: unknown): unknown {
  return type === 'timestamptz' && typeof value === 'string' ? new Date(value) : value;
}

/** LIKE's wildcards and escape character, taken literally in a search. */
function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * Every query of one resource: a read by id, keyset pages in id order filtered on any field,
 * and writes that check the version the client last read in their own WHERE clause, so a
 * concurrent change makes a stale write match nothing instead of overwriting it.
 */
export class ResourceCRUD<TTable extends PgTable> extends AppCRUD<TTable> {
  /** The item's columns: every column but the version. */
  private readonly itemColumns: Record<string, PgColumn>;

  constructor(
    context: Pick<ServiceContext, 'db' | 'queryArrays'>,
    table: TTable,
    protected readonly resource: ResourceTable,
  ) {
    super(context, table);
    const columns: Record<string, PgColumn> = getTableColumns(table);
    this.itemColumns = Object.fromEntries(
      Object.entries(columns).filter(([, column]) => column !== resource.version),
    );
  }

  private get versioned() {
    return { ...this.itemColumns, version: this.resource.version };
  }

  private tagged(row: Row): { item: Row; etag: string } {
    const { version, ...item } = row;
    return { item, etag: `"${String(version)}"` };
  }

  async getTagged(id: ResourceId, tx?: Executor) {
    const [row] = await this.on(tx)
      .select(this.versioned)
      .from(this.target)
      .where(eq(this.resource.id, id))
      .limit(1);
    return row === undefined ? undefined : this.tagged(row);
  }

  /**
   * The conditions of a listing's query: for each field `NAME` equality, for ordered kinds
   * `NAME_from` and `NAME_to` (inclusive), for text `NAME_contains` (any case).
   */
  filterSql(query: Record<string, unknown>): SQL | undefined {
    const conditions: (SQL | undefined)[] = [];
    for (const [name, { column, type }] of Object.entries(this.resource.fields)) {
      const value = query[name];
      if (value !== undefined) conditions.push(eq(column, toColumn(type, value)));
      if (RANGE_TYPES.includes(type)) {
        const from = query[`${name}_from`];
        const to = query[`${name}_to`];
        if (from !== undefined) conditions.push(gte(column, toColumn(type, from)));
        if (to !== undefined) conditions.push(lte(column, toColumn(type, to)));
      }
      const contains = query[`${name}_contains`];
      if (type === 'text' && typeof contains === 'string') {
        conditions.push(ilike(column, `%${escapeLike(contains)}%`));
      }
    }
    return and(...conditions);
  }

  /** Up to `limit` items in id order, strictly after `after` when given. */
  async page(where: SQL | undefined, after: ResourceId | undefined, limit: number, tx?: Executor) {
    const keyset = after === undefined ? undefined : sql`${this.resource.id} > ${after}`;
    const rows = await this.on(tx)
      .select(this.itemColumns)
      .from(this.target)
      .where(and(where, keyset))
      .orderBy(asc(this.resource.id))
      .limit(limit);
    return rows;
  }

  /** The fields of `input` as their columns take them; anything else is left out. */
  private columnValues(input: Row): Row {
    const values: Row = {};
    for (const [name, value] of Object.entries(input)) {
      const field = this.resource.fields[name];
      if (field !== undefined && value !== undefined) values[name] = toColumn(field.type, value);
    }
    return values;
  }

  async insert(input: Row, tx?: Executor) {
    const [row] = await this.on(tx)
      .insert(this.table)
      .values(this.columnValues(input) as TTable['$inferInsert'])
      .returning(this.versioned);
    if (row === undefined) throw new Error('insert returned no row');
    return this.tagged(row);
  }

  private matches(id: ResourceId, expected: Precondition): SQL | undefined {
    const isId = eq(this.resource.id, id);
    if (expected === 'any') return isId;
    // Versions are integers: a tag that is not one can match no row.
    const versions = expected.filter((tag) => /^\d{1,9}$/.test(tag)).map(Number);
    if (versions.length === 0) return and(isId, sql`false`);
    return and(isId, sql`${this.resource.version} = any(${sql.param(versions)}::int[])`);
  }

  /** Changes the item only if its version is one of `expected`; undefined when none matched. */
  async updateIf(id: ResourceId, expected: Precondition, changes: Row, tx?: Executor) {
    const [row] = await this.on(tx)
      .update(this.table)
      .set({ ...this.columnValues(changes), version: sql`${this.resource.version} + 1` } as Row)
      .where(this.matches(id, expected))
      .returning(this.versioned);
    return row === undefined ? undefined : this.tagged(row);
  }

  async deleteIf(id: ResourceId, expected: Precondition, tx?: Executor): Promise<boolean> {
    const rows = await this.on(tx)
      .delete(this.table)
      .where(this.matches(id, expected))
      .returning({ id: this.resource.id });
    return rows.length > 0;
  }
}
