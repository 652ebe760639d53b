/** ResourceService: the rules every generated resource shares (not found, conflicts, preconditions). */
import type { PgTable } from 'drizzle-orm/pg-core';
import { sqlState } from '../../backend/database.js';
import {
  ConflictError,
  InvalidInputError,
  NotFoundError,
  PreconditionFailedError,
} from '../../exc.js';
import { AppService, type ServiceContext } from '../base.js';
import { decodeIdCursor, encodeIdCursor } from './cursor.js';
import type { ResourceCRUD } from './crud.js';
import type { ListQuery, Page, Precondition, ResourceId, ResourceTable, Tagged } from './types.js';

/** What the database says a write broke, as the client's error. */
function refusal(error: unknown, label: string): Error | undefined {
  const state = sqlState(error);
  if (state === '23505') return new ConflictError(`A ${label} with these values already exists`);
  if (state === '23503')
    return new ConflictError(`The ${label} refers to something that is missing`);
  // A data exception (a value out of the column's range): the client's input, not a bug.
  if (state?.startsWith('22') === true) {
    return new InvalidInputError(`Invalid request: a value does not fit its ${label} field`, [
      { field: 'body', message: 'a value is out of range for its column' },
    ]);
  }
  return undefined;
}

/**
 * The service of one resource: reads, keyset pages and conditional writes through its
 * ResourceCRUD. `Item` is the read shape; `Create` what a client sends to add one (the fields,
 * without the id and version the database keeps).
 */
export class ResourceService<
  Item,
  Create extends object,
  TTable extends PgTable = PgTable,
> extends AppService {
  constructor(
    context: ServiceContext,
    protected readonly crud: ResourceCRUD<TTable>,
    protected readonly resource: ResourceTable,
    /** The resource's name in messages: `Director 3 not found`. */
    protected readonly label: string,
  ) {
    super(context);
  }

  private async write<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw refusal(error, this.label.toLowerCase()) ?? error;
    }
  }

  async get(id: ResourceId): Promise<Tagged<Item>> {
    const found = await this.crud.getTagged(id);
    if (found === undefined) throw new NotFoundError(`${this.label} ${id} not found`);
    return found as Tagged<Item>;
  }

  async list(query: ListQuery): Promise<Page<Item>> {
    const after =
      query.cursor === undefined ? undefined : decodeIdCursor(query.cursor, this.resource.idKind);
    const rows = await this.crud.page(this.crud.filterSql(query), after, query.limit + 1);
    if (rows.length <= query.limit) return { items: rows as Item[] };
    const items = rows.slice(0, query.limit);
    const last = items[items.length - 1] as Record<string, unknown>;
    return { items: items as Item[], next: encodeIdCursor(last.id as ResourceId) };
  }

  create(input: Create): Promise<Tagged<Item>> {
    return this.write(() => this.crud.insert(input as Record<string, unknown>)) as Promise<
      Tagged<Item>
    >;
  }

  /** Replaces every field: those the client leaves out of an optional field become null. */
  replace(id: ResourceId, input: Create, expected: Precondition): Promise<Tagged<Item>> {
    const cleared = Object.fromEntries(
      Object.keys(this.resource.fields).map((name) => [name, null]),
    );
    return this.update(id, { ...cleared, ...input }, expected);
  }

  patch(id: ResourceId, input: Partial<Create>, expected: Precondition): Promise<Tagged<Item>> {
    return this.update(id, input, expected);
  }

  private async update(
    id: ResourceId,
    changes: Record<string, unknown>,
    expected: Precondition,
  ): Promise<Tagged<Item>> {
    const updated = await this.write(() => this.crud.updateIf(id, expected, changes));
    return (updated as Tagged<Item> | undefined) ?? this.whyNotWritten(id);
  }

  async remove(id: ResourceId, expected: Precondition): Promise<void> {
    if (!(await this.write(() => this.crud.deleteIf(id, expected)))) await this.whyNotWritten(id);
  }

  private async whyNotWritten(id: ResourceId): Promise<never> {
    const current = await this.crud.getTagged(id);
    if (current === undefined) throw new NotFoundError(`${this.label} ${id} not found`);
    throw new PreconditionFailedError(
      `${this.label} ${id} was changed since it was read: read it again and retry with its new ETag`,
      current.etag,
    );
  }
}
