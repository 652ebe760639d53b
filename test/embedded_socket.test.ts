import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { openDatabase, queryRows, type Database, type Executor } from '../src/backend/database.js';
import { temporaryEmbedded } from './support/databases.js';

/**
 * The embedded database serves every process through its socket, and PGlite has one session:
 * the queries of several connections must reach it whole, never interleaved message by message.
 */
describe("the embedded database's socket", () => {
  let embedded: ReturnType<typeof temporaryEmbedded>;
  let server: Database;
  let tool: Database;

  before(async () => {
    embedded = temporaryEmbedded('myapi-socket-');
    // A burst of 600 waits its turn on PGlite's one session: this is about order, not overload.
    const settings = {
      ...embedded.settings,
      database: { ...embedded.settings.database, acquire_timeout_ms: 60_000 },
    };
    server = await openDatabase(settings, { role: 'server', command: 'test server' });
    tool = await openDatabase(settings, { role: 'tool', poolMax: 8 });
  });

  after(async () => {
    await tool.close();
    await server.close();
    embedded.remove();
  });

  it('answers 600 concurrent parameterised queries from two processes, each with its own answer', async () => {
    const ask = (executor: Executor, n: number) =>
      queryRows<{ n: number; s: string }>(
        executor,
        sql`select ${n}::int * 2 as n, repeat(${String(n)}, 2) as s`,
      );
    const answers = await Promise.all(
      Array.from({ length: 600 }, async (_, n) => {
        const database = n % 3 === 0 ? server : tool;
        if (n % 5 !== 0) return (await ask(database.db, n))[0];
        // Some in transactions, which the socket keeps together by design.
        return database.db.transaction(async (tx) => (await ask(tx, n))[0]);
      }),
    );
    answers.forEach((row, n) => {
      assert.deepEqual(row, { n: n * 2, s: `${n}${n}` });
    });
  });

  it("runs a tool's hot reads on all its connections, which share the server's one session", async () => {
    // Named statements would collide there ("prepared statement already exists").
    const text = 'select $1::int + 1';
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, n) => tool.queryArrays('test_plus_one', text, [n])),
    );
    assert.deepEqual(
      answers,
      Array.from({ length: 40 }, (_, n) => [[n + 1]]),
    );
    await assert.rejects(tool.queryArrays('test_plus_one', 'select 2', []), /another query/);
  });
});
