// The suite's own PostgreSQL set-up: the `test` database made when missing, and connection
// failures that name the DSN and the real cause instead of "unreachable".
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { ADMIN_DSN, describeEachDatabase, withDatabase } from './support/databases.js';
import { freePort } from './support/process.js';
import { connectAdmin, ensureDatabase } from './support/server_database.js';

it('says no server listens, naming the DSN, when the port is closed', async () => {
  const port = await freePort();
  const dsn = `postgresql://postgres@127.0.0.1:${port}/test`;
  await assert.rejects(connectAdmin(dsn), (error: Error) => {
    assert.match(
      error.message,
      new RegExp(
        `^no PostgreSQL server is listening at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`,
      ),
    );
    assert.ok(error.message.includes(dsn), error.message);
    return true;
  });
});

describeEachDatabase('the test database', { kinds: ['postgres'] }, () => {
  it('is created when missing, and a missing one is named as missing, not unreachable', async () => {
    const dsn = withDatabase(ADMIN_DSN, `myapi_test_missing_${randomBytes(6).toString('hex')}`);
    const database = new URL(dsn).pathname.slice(1);
    await assert.rejects(connectAdmin(dsn), (error: Error) => {
      assert.match(error.message, new RegExp(`the database "${database}" does not exist`));
      assert.ok(error.message.includes(dsn), error.message);
      return true;
    });
    await ensureDatabase(dsn);
    try {
      const client = await connectAdmin(dsn);
      try {
        const { rows } = await client.query<{ name: string }>('select current_database() as name');
        assert.deepEqual(rows, [{ name: database }]);
      } finally {
        await client.end();
      }
      await ensureDatabase(dsn); // existing: nothing to do, no error
    } finally {
      const admin = await connectAdmin(ADMIN_DSN);
      try {
        await admin.query(`drop database if exists ${admin.escapeIdentifier(database)}`);
      } finally {
        await admin.end();
      }
    }
  });

  it('names a refused login as such', async () => {
    const url = new URL(ADMIN_DSN);
    url.username = 'myapi_no_such_role';
    url.password = '';
    await assert.rejects(connectAdmin(url.toString()), (error: Error) => {
      assert.match(error.message, /refused the login of user "myapi_no_such_role" \(28/);
      return true;
    });
  });
});
