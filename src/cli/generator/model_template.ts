/** The Drizzle model and TypeBox schemas a generated service starts from. */
import type { FieldSpec, ServiceSpec } from './fields.js';
import { camel, pascal, words } from './names.js';

const INT32 = { min: -2_147_483_648, max: 2_147_483_647 };

function drizzleColumn(field: FieldSpec): { builder: string; code: string } {
  const n = `'${field.name}'`;
  const base: Record<FieldSpec['type'], [string, string]> = {
    text: ['text', `text(${n})`],
    int: ['integer', `integer(${n})`],
    bigint: ['bigint', `bigint(${n}, { mode: 'number' })`],
    numeric: ['numeric', `numeric(${n}, { precision: ${field.precision}, scale: ${field.scale} })`],
    bool: ['boolean', `boolean(${n})`],
    date: ['date', `date(${n}, { mode: 'string' })`],
    timestamptz: ['timestamp', `timestamp(${n}, { withTimezone: true, mode: 'date' })`],
    uuid: ['uuid', `uuid(${n})`],
  };
  const [builder, call] = base[field.type];
  let code = call;
  if (!field.optional) code += '.notNull()';
  if (field.unique) code += '.unique()';
  if (field.defaultValue !== undefined) code += defaultCall(field, field.defaultValue);
  return { builder, code };
}

function defaultCall(field: FieldSpec, value: string): string {
  switch (field.type) {
    case 'timestamptz':
      return '.defaultNow()';
    case 'uuid':
      return '.defaultRandom()';
    case 'int':
    case 'bigint':
    case 'bool':
      return `.default(${value})`;
    default:
      return `.default(${JSON.stringify(value)})`;
  }
}

const ID_COLUMNS = {
  serial: { builder: 'serial', code: "serial('id').primaryKey()" },
  bigserial: { builder: 'bigserial', code: "bigserial('id', { mode: 'number' }).primaryKey()" },
  uuid: { builder: 'uuid', code: "uuid('id').primaryKey().defaultRandom()" },
};

export function modelModule(spec: ServiceSpec): string {
  const columns = spec.fields.map((field) => ({ field, ...drizzleColumn(field) }));
  const id = ID_COLUMNS[spec.idKind];
  const builders = new Set([id.builder, 'integer', ...columns.map(({ builder }) => builder)]);
  return `/** Drizzle table of the ${words(spec.name)} service (written by \`myapi new-service\`). */
import { ${[...builders].sort().join(', ')} } from 'drizzle-orm/pg-core';
import { myapiSchema } from './base.js';

export const ${camel(spec.name)} = myapiSchema.table('${spec.name}', {
  id: ${id.code},
${columns.map(({ field, code }) => `  ${field.name}: ${code},`).join('\n')}
  // Bumped by every write through the API: the ETag names it, and If-Match checks it.
  version: integer('version').notNull().default(1),
});
`;
}

/** The TypeBox schema of a field's value (never null). */
function valueSchema(field: FieldSpec): string {
  switch (field.type) {
    case 'text':
      return `Type.String({ maxLength: 10_000 })`;
    case 'int':
      return `Type.Integer({ minimum: ${INT32.min}, maximum: ${INT32.max} })`;
    case 'bigint':
      return `Type.Integer({ minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER })`;
    case 'numeric': {
      const whole = Math.max(1, (field.precision ?? 0) - (field.scale ?? 0));
      const fraction = field.scale === 0 ? '' : `(\\\\.\\\\d{1,${field.scale}})?`;
      return `Type.String({ pattern: '^-?\\\\d{1,${whole}}${fraction}$', description: 'A decimal as text, numeric(${field.precision},${field.scale})' })`;
    }
    case 'bool':
      return 'Type.Boolean()';
    case 'date':
      return `Type.String({ format: 'date' })`;
    case 'timestamptz':
      return `Type.String({ format: 'date-time' })`;
    case 'uuid':
      return `Type.String({ format: 'uuid' })`;
  }
}

const ID_SCHEMAS = {
  serial: 'Type.Integer({ minimum: 1, maximum: 2_147_483_647 })',
  bigserial: 'Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })',
  uuid: "Type.String({ format: 'uuid' })",
};

export function schemasModule(spec: ServiceSpec): string {
  const Item = pascal(spec.singular);
  const nullable = (field: FieldSpec, schema: string) =>
    field.optional ? `Type.Union([${schema}, Type.Null()])` : schema;
  const ranged = (field: FieldSpec) =>
    ['int', 'bigint', 'numeric', 'date', 'timestamptz'].includes(field.type);
  const filters = spec.fields.flatMap((field) => {
    const value = `Type.Optional(fields.${field.name})`;
    const lines = [`    ${field.name}: ${value},`];
    if (ranged(field))
      lines.push(`    ${field.name}_from: ${value},`, `    ${field.name}_to: ${value},`);
    if (field.type === 'text') {
      lines.push(
        `    ${field.name}_contains: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),`,
      );
    }
    return lines;
  });
  return `/** TypeBox schemas of the ${words(spec.name)} service (written by \`myapi new-service\`). */
import { Type, type Static } from 'typebox';

/** Each field's values, as every schema below takes them. */
const fields = {
${spec.fields.map((field) => `  ${field.name}: ${valueSchema(field)},`).join('\n')}
};

export const ${Item}Schema = Type.Object({
  id: ${ID_SCHEMAS[spec.idKind]},
${spec.fields.map((field) => `  ${field.name}: ${nullable(field, `fields.${field.name}`)},`).join('\n')}
});
export type ${Item} = Static<typeof ${Item}Schema>;

/** What POST and PUT take. */
export const ${Item}CreateSchema = Type.Object(
  {
${spec.fields
  .map((field) => {
    const schema = nullable(field, `fields.${field.name}`);
    const optional = field.optional || field.defaultValue !== undefined;
    return `    ${field.name}: ${optional ? `Type.Optional(${schema})` : schema},`;
  })
  .join('\n')}
  },
  { additionalProperties: false },
);
export type ${Item}Create = Static<typeof ${Item}CreateSchema>;

/** What PATCH takes: any of the fields. */
export const ${Item}PatchSchema = Type.Object(
  {
${spec.fields.map((field) => `    ${field.name}: Type.Optional(${nullable(field, `fields.${field.name}`)}),`).join('\n')}
  },
  { additionalProperties: false },
);

export const ${Item}IdParamsSchema = Type.Object({ id: ${ID_SCHEMAS[spec.idKind]} });

export const ${Item}ListQuerySchema = Type.Object(
  {
${filters.join('\n')}
    cursor: Type.Optional(Type.String({ maxLength: 200, description: 'next_cursor of the previous page' })),
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
  },
  { additionalProperties: false },
);
`;
}
