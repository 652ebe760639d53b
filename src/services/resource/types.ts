/** The shapes the resource base classes exchange: field kinds, pages, tagged items. */
import type { PgColumn } from 'drizzle-orm/pg-core';

/** The column types a generated service's fields may have (`myapi new-service NAME field:type`). */
export const FIELD_TYPES = [
  'text',
  'int',
  'bigint',
  'numeric',
  'bool',
  'date',
  'timestamptz',
  'uuid',
] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

/** Types with an order, which the listing filters by range (`NAME_from`, `NAME_to`). */
export const RANGE_TYPES: readonly FieldType[] = [
  'int',
  'bigint',
  'numeric',
  'date',
  'timestamptz',
];

/** The id kinds a resource may have: integers the database counts, or random UUIDs. */
export type IdKind = 'serial' | 'bigserial' | 'uuid';

/** What the base classes need to know of a resource's table. */
export interface ResourceTable {
  /** The key, named `id`. */
  id: PgColumn;
  idKind: IdKind;
  /** Bumped by every write; the ETag names it. */
  version: PgColumn;
  /** The resource's own fields, by the name the API uses, with their kind. */
  fields: Record<string, { column: PgColumn; type: FieldType }>;
}

export type ResourceId = number | string;

/**
 * Which stored versions a conditional write may replace: any (`*`), or one of these (the
 * strong ETags a client sent, without their quotes). The router reads it from If-Match.
 */
export type Precondition = 'any' | readonly string[];

/** An item with the ETag that a later write must send back in If-Match. */
export interface Tagged<Item> {
  item: Item;
  etag: string;
}

export interface Page<Item> {
  items: Item[];
  /** The cursor of the next page, when there is one. */
  next?: string;
}

/** A listing's query: filters named after the fields, a cursor and a page size. */
export type ListQuery = Record<string, unknown> & { cursor?: string; limit: number };
