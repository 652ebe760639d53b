/**
 * The contract every generated service keeps, over HTTP on both databases: the tests that
 * `myapi new-service` writes call this with the service's own fields.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { FieldSpec, ServiceSpec } from '../../src/cli/generator/fields.js';
import { describeEachDatabase, type TestApp } from './databases.js';
import { tutorialApp, writerAuthorization } from './http.js';

type Item = Record<string, unknown>;
interface Problem {
  status: number;
  detail: string;
  errors?: { field: string }[];
}

/** The n-th sample value of a field, as the API returns it: distinct for every n below 9. */
export function sampleValue(field: FieldSpec, n: number): unknown {
  switch (field.type) {
    case 'text':
      return `${field.name} Ünïcode ${n}`;
    case 'int':
      return 1000 + n;
    case 'bigint':
      return 9_000_000_000_000 + n;
    case 'numeric': {
      const scale = field.scale ?? 0;
      const whole = (field.precision ?? 1) - scale > 0 ? String(n) : '0';
      return scale === 0 ? whole : `${whole}.${'5'.padStart(scale, '0')}`;
    }
    case 'bool':
      return n % 2 === 0;
    case 'date':
      return `2020-01-${String(n + 1).padStart(2, '0')}`;
    case 'timestamptz':
      return new Date(Date.UTC(2020, 0, 1, 12, 0, n)).toISOString();
    case 'uuid':
      return `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  }
}

/** A value of the wrong kind for a field, which validation must refuse with 422. */
const INVALID: Record<FieldSpec['type'], unknown> = {
  text: 12345,
  int: 'twelve',
  bigint: 1.5,
  numeric: '12.3.4',
  bool: 'maybe',
  date: '2020-13-45',
  timestamptz: 'yesterday',
  uuid: 'not-a-uuid',
};

function sample(spec: ServiceSpec, n: number): Item {
  return Object.fromEntries(spec.fields.map((field) => [field.name, sampleValue(field, n)]));
}

/** The contract checks of one generated service. */
export function describeResourceContract(spec: ServiceSpec): void {
  const base = `/${spec.name}`;
  describeEachDatabase(`the ${spec.name} service's contract`, (kind) => {
    let t: TestApp;
    let reader: string;
    let writer: string;
    const created: Item[] = [];
    before(async () => {
      ({ t, authorization: reader } = await tutorialApp(kind));
      writer = await writerAuthorization(t);
    });
    after(async () => {
      await t.close();
    });

    const call = (
      method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
      url: string,
      options: { as?: string; body?: Item; ifMatch?: string } = {},
    ) =>
      t.app.inject({
        method,
        url,
        headers: {
          ...(options.as === undefined ? {} : { authorization: options.as }),
          ...(options.ifMatch === undefined ? {} : { 'if-match': options.ifMatch }),
        },
        ...(options.body === undefined ? {} : { payload: options.body }),
      });
    const itemUrl = (item: Item) => `${base}/${String(item.id)}`;

    it('is in /openapi.json under its own tag, with its scopes in the Authorize dialog', async () => {
      const document = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
        paths: Record<
          string,
          Record<string, { tags?: string[]; security?: Record<string, string[]>[] }>
        >;
        components: {
          securitySchemes: Record<string, { flows?: { password: { scopes: object } } }>;
        };
      }>();
      const operations = Object.values(document.paths[base] ?? {});
      assert.equal(operations.length, 2, 'GET and POST on the collection');
      const tag = operations[0]?.tags?.[0];
      assert.ok(tag !== undefined && tag.toLowerCase() === spec.name.replace(/_/g, ' '));
      const scopes = Object.keys(
        document.components.securitySchemes.OAuth2PasswordBearer?.flows?.password.scopes ?? {},
      );
      assert.ok(scopes.includes(`${spec.name}:read`) && scopes.includes(`${spec.name}:write`));
      // The password flow's token with the scope, or a bearer token pasted in (a PAT).
      const item = document.paths[base] ?? {};
      assert.deepEqual(item.get?.security, [
        { OAuth2PasswordBearer: [`${spec.name}:read`] },
        { HTTPBearer: [] },
      ]);
      assert.deepEqual(item.post?.security, [
        { OAuth2PasswordBearer: [`${spec.name}:write`] },
        { HTTPBearer: [] },
      ]);
    });

    it('creates items (201, Location, ETag) and reads each back with the same ETag', async () => {
      for (const n of [1, 2, 3]) {
        const response = await call('POST', base, { as: writer, body: sample(spec, n) });
        assert.equal(response.statusCode, 201, response.body);
        const item = response.json<Item>();
        assert.deepEqual({ ...item, id: undefined }, { ...sample(spec, n), id: undefined });
        assert.equal(response.headers.location, itemUrl(item));
        const read = await call('GET', itemUrl(item), { as: reader });
        assert.equal(read.statusCode, 200, read.body);
        assert.deepEqual(read.json(), item);
        assert.equal(read.headers.etag, response.headers.etag);
        created.push(item);
      }
    });

    it('lists in id order by keyset pages, following next_cursor and Link', async () => {
      const seen: unknown[] = [];
      let url: string | undefined = `${base}?limit=2`;
      while (url !== undefined) {
        const response = await call('GET', url, { as: reader });
        assert.equal(response.statusCode, 200, response.body);
        const page = response.json<{ items: Item[]; next_cursor: string | null }>();
        assert.ok(page.items.length <= 2);
        seen.push(...page.items.map((item) => item.id));
        const link = response.headers.link;
        assert.equal(typeof link === 'string', page.next_cursor !== null);
        url = page.next_cursor === null ? undefined : `${base}?limit=2&cursor=${page.next_cursor}`;
      }
      // Id order: numbers by value, UUIDs as PostgreSQL orders them (their hex digits).
      const ids = created.map((item) => item.id as number | string);
      assert.deepEqual(
        seen,
        [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
      );
    });

    it('filters on every field: equality, ranges and text search', async () => {
      const target = created[1] as Item;
      for (const field of spec.fields) {
        const value = String(target[field.name]);
        const queries = [`${field.name}=${encodeURIComponent(value)}`];
        if (['int', 'bigint', 'numeric', 'date', 'timestamptz'].includes(field.type)) {
          queries.push(
            `${field.name}_from=${encodeURIComponent(value)}&${field.name}_to=${encodeURIComponent(value)}`,
          );
        }
        if (field.type === 'text') {
          queries.push(
            `${field.name}_contains=${encodeURIComponent(value.slice(-6).toUpperCase())}`,
          );
        }
        for (const query of queries) {
          const response = await call('GET', `${base}?${query}`, { as: reader });
          assert.equal(response.statusCode, 200, `${query}: ${response.body}`);
          const { items } = response.json<{ items: Item[] }>();
          assert.ok(
            items.some((item) => item.id === target.id),
            `${query} finds the item`,
          );
          assert.ok(
            items.every((item) => String(item[field.name]) === value),
            `${query} finds only matches`,
          );
        }
      }
    });

    it('writes need If-Match: 428 without, 412 with a stale ETag, 200 with the current one', async () => {
      const item = created[0] as Item;
      const first = await call('GET', itemUrl(item), { as: reader });
      const etag = String(first.headers.etag);
      const change = sample(spec, 4);
      assert.equal(
        (await call('PATCH', itemUrl(item), { as: writer, body: change })).statusCode,
        428,
      );
      const patched = await call('PATCH', itemUrl(item), {
        as: writer,
        body: change,
        ifMatch: etag,
      });
      assert.equal(patched.statusCode, 200, patched.body);
      assert.notEqual(patched.headers.etag, etag);
      const stale = await call('PUT', itemUrl(item), {
        as: writer,
        body: sample(spec, 5),
        ifMatch: etag,
      });
      assert.equal(stale.statusCode, 412, stale.body);
      assert.equal(stale.headers.etag, patched.headers.etag);
      const replaced = await call('PUT', itemUrl(item), {
        as: writer,
        body: sample(spec, 5),
        ifMatch: String(patched.headers.etag),
      });
      assert.equal(replaced.statusCode, 200, replaced.body);
      assert.deepEqual(
        { ...replaced.json<Item>(), id: undefined },
        { ...sample(spec, 5), id: undefined },
      );
    });

    it('needs a token, and the write scope to write: 401 without, 403 for a regular user', async () => {
      assert.equal((await call('GET', base)).statusCode, 401);
      const refused = await call('POST', base, { as: reader, body: sample(spec, 6) });
      assert.equal(refused.statusCode, 403, refused.body);
      assert.match(refused.json<Problem>().detail, new RegExp(`${spec.name}:write`));
    });

    it('refuses bad input with 422 naming the field', async () => {
      for (const field of spec.fields) {
        const body = { ...sample(spec, 7), [field.name]: INVALID[field.type] };
        const response = await call('POST', base, { as: writer, body });
        assert.equal(response.statusCode, 422, `${field.name}: ${response.body}`);
        const fields = (response.json<Problem>().errors ?? []).map((error) => error.field);
        assert.ok(
          fields.some((name) => name.includes(field.name)),
          `${field.name} named in ${response.body}`,
        );
      }
      const unknown = await call('POST', base, {
        as: writer,
        body: { ...sample(spec, 7), surprise: 1 },
      });
      assert.equal(unknown.statusCode, 422, unknown.body);
      const cursor = await call('GET', `${base}?cursor=bm90LWEtY3Vyc29y`, { as: reader });
      assert.equal(cursor.statusCode, 422, cursor.body);
      assert.equal((await call('GET', `${base}/not-an-id`, { as: reader })).statusCode, 422);
    });

    if (spec.fields.some((field) => field.unique)) {
      it('answers 409 when a unique field is taken', async () => {
        const taken = await call('POST', base, { as: writer, body: sample(spec, 2) });
        assert.equal(taken.statusCode, 409, taken.body);
      });
    }

    it('deletes with If-Match: 204, then 404', async () => {
      const item = created[2] as Item;
      const etag = String((await call('GET', itemUrl(item), { as: reader })).headers.etag);
      assert.equal(
        (await call('DELETE', itemUrl(item), { as: writer, ifMatch: etag })).statusCode,
        204,
      );
      assert.equal((await call('GET', itemUrl(item), { as: reader })).statusCode, 404);
      assert.equal(
        (await call('DELETE', itemUrl(item), { as: writer, ifMatch: '*' })).statusCode,
        404,
      );
    });
  });
}
