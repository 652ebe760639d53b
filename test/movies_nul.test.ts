import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { describeEachDatabase, type TestApp } from './support/databases.js';
import { tutorialApp } from './support/http.js';

/**
 * A NUL character cannot be stored in PostgreSQL text: inside a cursor's title position it
 * must be refused as a bad cursor (422 naming the field), never reach the database as a 500.
 */

const forged = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

describeEachDatabase('a NUL character in a keyset cursor', (kind) => {
  let t: TestApp;
  let reader: string;
  before(async () => {
    ({ t, authorization: reader } = await tutorialApp(kind));
  });
  after(async () => {
    await t.close();
  });

  it('is a 422 naming querystring.cursor, in either order, wherever the NUL sits', async () => {
    for (const order of ['asc', 'desc']) {
      for (const title of ['\u0000', 'The\u0000Godfather', 'The Godfather\u0000']) {
        const url = `/movies?sort=title&order=${order}&cursor=${forged(['title', order, title, 2])}`;
        const response = await t.app.inject({
          method: 'GET',
          url,
          headers: { authorization: reader },
        });
        assert.equal(response.statusCode, 422, `${url}: ${response.body}`);
        assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
        const body = response.json<{ detail: string; errors: { field: string }[] }>();
        assert.deepEqual(
          body.errors.map((e) => e.field),
          ['querystring.cursor'],
        );
        assert.match(body.detail, /NUL/);
      }
    }
    // The same cursor without the NUL is a position the API accepts.
    const fine = await t.app.inject({
      method: 'GET',
      url: `/movies?sort=title&cursor=${forged(['title', 'asc', 'The Godfather', 2])}`,
      headers: { authorization: reader },
    });
    assert.equal(fine.statusCode, 200, fine.body);
  });
});
