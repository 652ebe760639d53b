/** What `myapi new-service NAME field:type ...` asks for, parsed and checked before anything is written. */
import { FIELD_TYPES, type FieldType, type IdKind } from '../../services/resource/types.js';

export class SpecError extends Error {
  override name = 'SpecError';
}

export interface FieldSpec {
  name: string;
  type: FieldType;
  /** May be null (`?`): optional when created. */
  optional: boolean;
  /** No two rows share a value (`!`). */
  unique: boolean;
  /** `=value`: the column's default, which also makes the field optional when created. */
  defaultValue?: string;
  /** numeric(p,s) */
  precision?: number;
  scale?: number;
}

export interface ServiceSpec {
  /** The service, its table and its path: plural snake_case, `film_studios`. */
  name: string;
  /** One item: `film_studio`. */
  singular: string;
  idKind: IdKind;
  fields: FieldSpec[];
}

const IDENTIFIER = /^[a-z][a-z0-9_]{0,39}$/;
/** Names the API, the listing or the base classes use for themselves. */
const RESERVED_FIELDS = new Set(['id', 'version', 'cursor', 'limit', 'items', 'next_cursor']);
const FIELD = /^([a-z][a-z0-9_]*):([a-z]+)(?:\((\d+),(\d+)\))?(!?)(\??)(!?)(?:=(.*))?$/s;
const ID_KINDS: readonly IdKind[] = ['serial', 'bigserial', 'uuid'];

const DEFAULT_CHECKS: Partial<Record<FieldType, RegExp>> = {
  int: /^-?\d{1,10}$/,
  bigint: /^-?\d{1,16}$/,
  bool: /^(true|false)$/,
  date: /^\d{4}-\d{2}-\d{2}$/,
  timestamptz: /^now$/,
  uuid: /^random$/,
};

function checkDefault(field: FieldSpec, raw: string): void {
  if (field.type === 'numeric') {
    const whole = (field.precision ?? 0) - (field.scale ?? 0);
    const ok = new RegExp(`^-?\\d{1,${Math.max(1, whole)}}(\\.\\d{1,${field.scale ?? 0}})?$`);
    if (!ok.test(raw))
      throw new SpecError(
        `${field.name}: ${raw} does not fit numeric(${field.precision},${field.scale})`,
      );
    return;
  }
  const check = DEFAULT_CHECKS[field.type];
  if (check !== undefined && !check.test(raw)) {
    const hint =
      field.type === 'timestamptz'
        ? ' (only "now")'
        : field.type === 'uuid'
          ? ' (only "random")'
          : '';
    throw new SpecError(`${field.name}: ${raw} is not a default for ${field.type}${hint}`);
  }
}

/** One `name:type[(p,s)][!][?][=default]` argument. */
export function parseField(text: string): FieldSpec {
  const match = FIELD.exec(text);
  if (match === null) {
    throw new SpecError(
      `${text}: expected name:type, optionally followed by ! (unique), ? (may be null) and =default`,
    );
  }
  const [, name = '', type = '', precision, scale, unique1, optional, unique2, defaultValue] =
    match;
  if (!IDENTIFIER.test(name))
    throw new SpecError(`${name}: a field name is lower_snake_case, at most 40 characters`);
  if (RESERVED_FIELDS.has(name))
    throw new SpecError(`${name}: the name is the API's own, choose another`);
  if (!(FIELD_TYPES as readonly string[]).includes(type)) {
    throw new SpecError(
      `${name}: unknown type ${type}; one of ${FIELD_TYPES.join(', ')}, numeric(p,s)`,
    );
  }
  const field: FieldSpec = {
    name,
    type: type as FieldType,
    optional: optional === '?',
    unique: unique1 === '!' || unique2 === '!',
  };
  if (precision !== undefined && type !== 'numeric')
    throw new SpecError(`${name}: only numeric takes (p,s)`);
  if (type === 'numeric') {
    field.precision = precision === undefined ? 12 : Number(precision);
    field.scale = scale === undefined ? 2 : Number(scale);
    if (field.precision < 1 || field.precision > 30 || field.scale > field.precision) {
      throw new SpecError(`${name}: numeric(p,s) needs 1 <= p <= 30 and s <= p`);
    }
  }
  if (field.unique && field.type === 'bool')
    throw new SpecError(`${name}: a bool cannot be unique`);
  if (defaultValue !== undefined) {
    checkDefault(field, defaultValue);
    field.defaultValue = defaultValue;
  }
  return field;
}

/** The singular of a plural English name, as far as a rule goes: `--singular` says otherwise. */
export function singularOf(name: string): string {
  if (name.endsWith('ies')) return `${name.slice(0, -3)}y`;
  if (/(ss|x|ch|sh)es$/.test(name)) return name.slice(0, -2);
  if (name.endsWith('s') && !name.endsWith('ss')) return name.slice(0, -1);
  return name;
}

/** The whole request, checked: names, fields, and the query parameters they make. */
export function parseServiceSpec(
  name: string,
  fieldArgs: readonly string[],
  options: { id?: string; singular?: string } = {},
): ServiceSpec {
  if (!IDENTIFIER.test(name)) {
    throw new SpecError(
      `${name}: a service name is lower_snake_case (plural: directors), at most 40 characters`,
    );
  }
  const idKind = (options.id ?? 'serial') as IdKind;
  if (!ID_KINDS.includes(idKind))
    throw new SpecError(`--id ${options.id}: one of ${ID_KINDS.join(', ')}`);
  const singular = options.singular ?? singularOf(name);
  if (!IDENTIFIER.test(singular)) throw new SpecError(`--singular ${singular}: lower_snake_case`);
  if (singular === name)
    throw new SpecError(`${name}: give the singular with --singular, it must differ from the name`);
  if (fieldArgs.length === 0) throw new SpecError('a service needs at least one field: name:text');
  const fields = fieldArgs.map(parseField);
  const params = new Set<string>();
  for (const parameter of fields.flatMap(queryParameters)) {
    if (params.has(parameter) || RESERVED_FIELDS.has(parameter)) {
      throw new SpecError(`the query parameter ${parameter} would mean two things: rename a field`);
    }
    params.add(parameter);
  }
  return { name, singular, idKind, fields };
}

/** The listing's query parameters a field makes: itself, a range, or a text search. */
export function queryParameters(field: FieldSpec): string[] {
  const range = ['int', 'bigint', 'numeric', 'date', 'timestamptz'].includes(field.type);
  return [
    field.name,
    ...(range ? [`${field.name}_from`, `${field.name}_to`] : []),
    ...(field.type === 'text' ? [`${field.name}_contains`] : []),
  ];
}
