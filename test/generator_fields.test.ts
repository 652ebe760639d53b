/** What `myapi new-service` accepts as fields and names, and what it refuses before writing. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  parseField,
  parseServiceSpec,
  queryParameters,
  singularOf,
  SpecError,
} from '../src/cli/generator/fields.js';
import { serviceFiles } from '../src/cli/generator/project.js';

describe('new-service field specs', () => {
  it('reads type, nullability, uniqueness and defaults', () => {
    assert.deepEqual(parseField('name:text'), {
      name: 'name',
      type: 'text',
      optional: false,
      unique: false,
    });
    assert.deepEqual(parseField('born:int?'), {
      name: 'born',
      type: 'int',
      optional: true,
      unique: false,
    });
    assert.deepEqual(parseField('code:text!'), {
      name: 'code',
      type: 'text',
      optional: false,
      unique: true,
    });
    assert.deepEqual(parseField('price:numeric(8,2)?=9.99'), {
      name: 'price',
      type: 'numeric',
      optional: true,
      unique: false,
      precision: 8,
      scale: 2,
      defaultValue: '9.99',
    });
    assert.equal(parseField('amount:numeric').precision, 12);
    assert.equal(parseField('active:bool=false').defaultValue, 'false');
    assert.equal(parseField('at:timestamptz=now').defaultValue, 'now');
    assert.equal(parseField('ref:uuid=random').defaultValue, 'random');
    assert.equal(parseField('note:text=hello = world').defaultValue, 'hello = world');
  });

  it('refuses what it cannot write, saying why', () => {
    const refusals: [string, RegExp][] = [
      ['name', /expected name:type/],
      ['Name:text', /expected name:type/],
      ['name:varchar', /unknown type varchar/],
      ['version:int', /the API's own/],
      ['count:int(3,1)', /only numeric takes/],
      ['price:numeric(40,2)', /1 <= p <= 30/],
      ['price:numeric(4,2)=123.4', /does not fit numeric\(4,2\)/],
      ['flag:bool!', /cannot be unique/],
      ['born:date=yesterday', /not a default for date/],
      ['at:timestamptz=2020-01-01', /only "now"/],
      ['ref:uuid=abc', /only "random"/],
    ];
    for (const [text, message] of refusals) {
      assert.throws(
        () => parseField(text),
        (error: unknown) => error instanceof SpecError && message.test(error.message),
        text,
      );
    }
  });

  it('checks the service name, its singular and the query parameters the fields make', () => {
    assert.equal(singularOf('directors'), 'director');
    assert.equal(singularOf('companies'), 'company');
    assert.equal(singularOf('boxes'), 'box');
    assert.equal(singularOf('classes'), 'class');
    assert.equal(parseServiceSpec('film_studios', ['name:text']).singular, 'film_studio');
    assert.deepEqual(queryParameters(parseField('born:int')), ['born', 'born_from', 'born_to']);
    assert.deepEqual(queryParameters(parseField('name:text')), ['name', 'name_contains']);
    assert.deepEqual(queryParameters(parseField('done:bool')), ['done']);
    assert.throws(() => parseServiceSpec('staff', ['name:text']), /--singular/);
    assert.equal(
      parseServiceSpec('staff', ['name:text'], { singular: 'member' }).singular,
      'member',
    );
    assert.throws(
      () => parseServiceSpec('directors', ['name:text'], { id: 'int' }),
      /serial, bigserial, uuid/,
    );
    assert.throws(() => parseServiceSpec('directors', []), /at least one field/);
    assert.throws(() => parseServiceSpec('directors', ['born:int', 'born_from:int']), /two things/);
  });

  it('plans one file per layer, and the docs page and tests', () => {
    const spec = parseServiceSpec('directors', ['name:text', 'born:int?']);
    assert.deepEqual(Object.keys(serviceFiles(spec)).sort(), [
      'docs/services/directors.md',
      'src/models/directors.ts',
      'src/routers/directors.ts',
      'src/schemas/directors.ts',
      'src/services/directors/crud.ts',
      'src/services/directors/index.ts',
      'src/services/directors/service.ts',
      'test/directors.test.ts',
    ]);
  });
});
