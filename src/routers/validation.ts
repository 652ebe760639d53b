// Request validation: Ajv without its loose type coercion, strict decimal coercion, no NUL bytes.
import AjvCompiler from '@fastify/ajv-compiler';
import type { AnySchema, ErrorObject } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';

/**
 * Ajv's own coercion turns "Infinity", "1e400", "0x1", " 1", true and null into numbers (and
 * null into "" or false), so such values pass a schema and fail later in SQL, or silently mean
 * something else. Here only plain decimal strings become numbers, only "true" and "false"
 * booleans; anything else stays as sent and Ajv names the field that has the wrong type.
 */
const INTEGER = /^-?[0-9]+$/;
const DECIMAL = /^-?[0-9]+(?:\.[0-9]+)?$/;

interface PropertySchema {
  type?: unknown;
  properties?: Record<string, PropertySchema>;
}

function coerced(schema: PropertySchema, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const pattern = schema.type === 'integer' ? INTEGER : schema.type === 'number' ? DECIMAL : null;
  if (pattern !== null) {
    const number = pattern.test(value) ? Number(value) : NaN;
    // A string of 400 digits is a number too big to be finite: it stays a string, and a 422.
    return Number.isFinite(number) ? number : value;
  }
  if (schema.type === 'boolean' && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

function coerceProperties(schema: PropertySchema, data: unknown): void {
  if (schema.properties === undefined || typeof data !== 'object' || data === null) return;
  const record = data as Record<string, unknown>;
  for (const [name, property] of Object.entries(schema.properties)) {
    if (Object.hasOwn(record, name)) record[name] = coerced(property, record[name]);
  }
}

/**
 * PostgreSQL text cannot hold U+0000: a NUL in any string would fail its statement. Every
 * string of every request part is checked here, once, instead of in each schema.
 */
function nulErrors(data: unknown, path: string, found: ErrorObject[]): void {
  if (typeof data === 'string') {
    if (data.includes('\u0000')) {
      found.push({
        instancePath: path,
        schemaPath: '#/noNul',
        keyword: 'noNul',
        params: {},
        message: 'must not contain a NUL character',
      });
    }
  } else if (Array.isArray(data)) {
    data.forEach((item, index) => {
      nulErrors(item, `${path}/${index}`, found);
    });
  } else if (typeof data === 'object' && data !== null) {
    for (const [name, value] of Object.entries(data)) {
      // A NUL in a property's name is as fatal as in its value.
      nulErrors(name, path, found);
      nulErrors(value, `${path}/${name.replaceAll('~', '~0').replaceAll('/', '~1')}`, found);
    }
  }
}

/** The part of a Fastify instance this needs (any logger, any type provider). */
interface ValidatingApp {
  getSchemas(): Record<string, unknown>;
  setValidatorCompiler(compiler: FastifySchemaCompiler<PropertySchema>): unknown;
}

/** Installs the strict validator on `app`; call it after the shared schemas are added. */
export function useStrictValidation(app: ValidatingApp): void {
  let compile: ReturnType<ReturnType<typeof AjvCompiler>> | undefined;
  const strict: FastifySchemaCompiler<PropertySchema> = (route) => {
    compile ??= AjvCompiler()(app.getSchemas() as Record<string, AnySchema>, {
      // Unknown fields are refused (422), never silently dropped as Fastify does by default.
      customOptions: { allErrors: true, removeAdditional: false, coerceTypes: false },
    });
    const validate = compile(route);
    const schema = route.schema;
    const checked = (data: unknown): boolean => {
      coerceProperties(schema, data);
      const valid = validate(data) as boolean;
      const errors: ErrorObject[] = valid ? [] : [...(validate.errors ?? [])];
      nulErrors(data, '', errors);
      checked.errors = errors.length === 0 ? null : errors;
      return errors.length === 0;
    };
    checked.errors = null as ErrorObject[] | null;
    return checked;
  };
  app.setValidatorCompiler(strict);
}
