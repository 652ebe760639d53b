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
    server = await openDatabase(embedded.settings, { role: 'server', command: 'test server' });
    tool = await openDatabase(embedded.settings, { role: 'tool', poolMax: 8 });
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
});
