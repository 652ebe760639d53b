// Values for fuzzing from JSON schemas: valid ones, edge cases, wrong types and nasty strings.
import fc from 'fast-check';

export interface JsonSchema {
  type?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  examples?: unknown[];
  default?: unknown;
}

/** Strings no API field should choke on: control characters, NUL, odd Unicode, text numbers. */
const NASTY_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\u0001\u001f\u007f',
  '\t\r\n',
  '\u202e\u200b\ufeff',
  '😀',
  "'; drop table movies; --",
  '%',
  '%00',
  '../../etc/passwd',
  'Infinity',
  '-Infinity',
  'NaN',
  '1e400',
  '-1e400',
  '0x1',
  '0b101',
  '0o7',
  '1e3',
  ' 1',
  '1 ',
  '+1',
  '-0',
  '1.5',
  '99999999999999999999999',
  'true',
  'null',
  '[]',
  '{}',
];

export const text = (maxLength: number) =>
  fc.oneof(
    fc.constantFrom(...NASTY_STRINGS),
    fc.string({ unit: 'binary', maxLength }),
    fc.integer({ min: 1, max: 5000 }).map((n) => 'x'.repeat(n)),
  );

/** A valid value of `schema` (examples and defaults included), as a JSON value. */
export function valid(schema: JsonSchema): fc.Arbitrary<unknown> {
  const picks: fc.Arbitrary<unknown>[] = [];
  if (schema.examples !== undefined && schema.examples.length > 0) {
    picks.push(fc.constantFrom(...schema.examples));
  }
  // An enumeration's values are its only valid ones.
  if (schema.enum !== undefined) return fc.constantFrom(...schema.enum);
  if (schema.anyOf !== undefined) picks.push(fc.oneof(...schema.anyOf.map(valid)));
  const min = schema.minimum ?? -1000;
  const max = schema.maximum ?? 100_000;
  switch (schema.type) {
    case 'integer':
      picks.push(fc.integer({ min, max }), fc.constantFrom(min, max));
      break;
    case 'number':
      picks.push(fc.integer({ min: min * 10, max: max * 10 }).map((n) => n / 10));
      break;
    case 'boolean':
      picks.push(fc.boolean());
      break;
    case 'string':
      picks.push(
        fc.string({
          minLength: schema.minLength ?? 0,
          maxLength: Math.min(schema.maxLength ?? 40, 40),
        }),
      );
      break;
    case 'object':
      picks.push(objectOf(schema, valid));
      break;
    default:
      break;
  }
  return picks.length === 0 ? fc.constant('x') : fc.oneof(...picks);
}

/** Just outside or on the edge of `schema`'s limits, and values of other types. */
export function invalid(schema: JsonSchema): fc.Arbitrary<unknown> {
  const edges: unknown[] = [
    null,
    true,
    [],
    {},
    1.5,
    -1,
    0,
    2 ** 31,
    2 ** 53 + 2,
    -(2 ** 63),
    1e308,
  ];
  if (schema.minimum !== undefined) edges.push(schema.minimum - 1, schema.minimum - 0.05);
  if (schema.maximum !== undefined) edges.push(schema.maximum + 1, schema.maximum + 0.05);
  if (schema.maxLength !== undefined) edges.push('y'.repeat(schema.maxLength + 1));
  return fc.oneof(fc.constantFrom(...edges), text(300));
}

export function objectOf(
  schema: JsonSchema,
  value: (schema: JsonSchema) => fc.Arbitrary<unknown>,
): fc.Arbitrary<Record<string, unknown>> {
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const fields = Object.entries(properties).map(([name, property]) =>
    fc
      .option(value(property), { nil: undefined, freq: required.has(name) ? 20 : 3 })
      .map((v) => [name, v] as const),
  );
  return fc
    .tuple(...fields)
    .map((pairs) => Object.fromEntries(pairs.filter(([, v]) => v !== undefined)));
}

/** A value of one field: mostly valid, sometimes broken. */
export function field(schema: JsonSchema): fc.Arbitrary<unknown> {
  return fc.oneof(
    { arbitrary: valid(schema), weight: 6 },
    { arbitrary: invalid(schema), weight: 1 },
  );
}

/** `arbitrary`'s value once in `every` draws, null otherwise. */
export function rarely<T>(arbitrary: fc.Arbitrary<T>, every: number): fc.Arbitrary<T | null> {
  return fc.oneof({ arbitrary: fc.constant(null), weight: every - 1 }, { arbitrary, weight: 1 });
}

/** A path segment, even from a string with lone surrogates (which encodeURIComponent refuses). */
export function segment(value: string): string {
  return encodeURIComponent(value.replace(/[\uD800-\uDFFF]/g, '\uFFFD'));
}

/** As a URL or header parameter: the text of a JSON value. */
export function asText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}
