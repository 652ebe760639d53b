import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { csvLine, movieFromRecord } from '../src/services/movies/index.js';
import {
  createServerDatabase,
  describeEachDatabase,
  moviesAnalyzed,
  TOKEN_KEY,
} from './support/databases.js';
import { CREATE_USER_ARGS, login, runCli, startServer, tempDir } from './support/process.js';
import { HEADER, parse, TRICKY, TRICKY_CSV } from './movies_csv_fixtures.js';

/** `myapi import-movies` and `myapi export-movies` as subprocesses (the service: movies_csv.test). */

/** A new database on the PostgreSQL server for CLI runs, and the environment that names it. */
async function cliDatabase(): Promise<{
  dsn: string;
  env: Record<string, string>;
  drop: () => Promise<void>;
}> {
  const server = await createServerDatabase();
  return {
    dsn: server.dsn,
    env: { MYAPI_DATABASE__DSN: server.dsn, MYAPI_TOKEN_KEY: TOKEN_KEY },
    drop: server.drop,
  };
}

const STACK_FRAME = '    at ';

// As subprocesses on the server database; on PGlite through a running server below. Each
// embedded CLI run boots PGlite (seconds of CPU on these 2 cores), and a dozen of them beside
// the other suites pushed time-bounded tests over their limits.
describeEachDatabase(
  'import-movies and export-movies',
  { kinds: ['postgres'], concurrency: 1 },
  () => {
    let env: Record<string, string>;
    let drop: () => Promise<void>;
    let cwd: string;
    before(async () => {
      ({ env, drop } = await cliDatabase());
      cwd = tempDir();
      const migrated = await runCli(['migrate'], cwd, env);
      assert.equal(migrated.exit.code, 0, migrated.proc.show());
    });
    after(async () => {
      await drop();
    });

    const cli = (...args: string[]) => runCli(args, cwd, env);
    const file = (name: string, content: string | Buffer) => {
      const path = join(cwd, name);
      writeFileSync(path, content);
      return path;
    };
    const exported = async () => {
      const { exit, proc } = await cli('export-movies');
      assert.equal(exit.code, 0, proc.show());
      return proc.stdout;
    };
    /** Exit 1, one `myapi: error:` line on stderr, no stack; returns the line. */
    const failure = async (...args: string[]) => {
      const { exit, proc } = await cli(...args);
      assert.equal(exit.code, 1, proc.show());
      assert.ok(!proc.stderr.includes(STACK_FRAME), proc.show());
      const lines = proc.stderr.split('\n').filter((line) => line !== '');
      assert.equal(lines.length, 1, proc.show());
      assert.match(lines[0] ?? '', /^myapi: error: /);
      return lines[0] ?? '';
    };

    it('exports an empty catalogue as the header alone', async () => {
      assert.equal(await exported(), HEADER);
    });

    it('a bad row aborts the whole import with its line and reason, leaving nothing behind', async () => {
      // More good rows than one batch (5000), so earlier batches were already inserted.
      const good = Array.from({ length: 6000 }, (_, i) =>
        csvLine({ movie_id: i + 1, title: `Movie ${i + 1}`, released: 2000, rating: 5 }),
      ).join('');
      const path = file(
        'bad.csv',
        `${HEADER}${good}6001,Ten out of ten,2000,10.0\n6002,ok,2000,1\n`,
      );
      const line = await failure('import-movies', path);
      assert.match(line, /bad\.csv line 6002: rating must be 0\.0 to 9\.9/);
      assert.match(line, /nothing was imported/);
      assert.equal(await exported(), HEADER);

      const unclosed = file('unclosed.csv', `${HEADER}1,"no end,2000,1\n`);
      assert.match(
        await failure('import-movies', unclosed),
        /line 2: a quoted field is never closed/,
      );
      const latin1 = file(
        'latin1.csv',
        Buffer.concat([
          Buffer.from(`${HEADER}1,L`),
          Buffer.from([0xe9]),
          Buffer.from('on,1994,8.5\n'),
        ]),
      );
      assert.match(await failure('import-movies', latin1), /not valid UTF-8/);
      assert.match(
        await failure('import-movies', join(cwd, 'missing.csv')),
        /cannot read .*missing\.csv/,
      );
      assert.match(
        await failure('import-movies', file('header.csv', 'id,name\n1,a\n')),
        /line 1: the header must be/,
      );
      assert.match(
        await failure(
          'import-movies',
          file('nul.csv', `${HEADER}1,ok,2000,1\n2,a\u0000b,2000,1\n`),
        ),
        /nul\.csv line 3: title must not contain a NUL character; nothing was imported$/,
      );
      assert.equal(await exported(), HEADER);
    });

    it('round-trips byte for byte: import, export, import elsewhere, export', async () => {
      const path = file('tricky.csv', TRICKY_CSV);
      const { exit, proc } = await cli('import-movies', path);
      assert.equal(exit.code, 0, proc.show());
      assert.match(proc.stdout, /^imported 8 movies in [0-9.]+ s; 8 movies in /);
      const first = await exported();
      assert.equal(first, TRICKY_CSV);
      const again = await cliDatabase();
      try {
        const target = { ...again.env };
        assert.equal((await runCli(['migrate'], cwd, target)).exit.code, 0);
        const copied = file('copy.csv', first);
        assert.equal(await moviesAnalyzed(again.dsn), false);
        const imported = await runCli(['import-movies', copied], cwd, target);
        assert.equal(imported.exit.code, 0, imported.proc.show());
        assert.equal(await moviesAnalyzed(again.dsn), true, 'plans need statistics at once');
        const second = await runCli(['export-movies'], cwd, target);
        assert.equal(second.proc.stdout, first);
        assert.equal(Buffer.compare(Buffer.from(second.proc.stdout), Buffer.from(TRICKY_CSV)), 0);
      } finally {
        await again.drop();
      }
    });

    it('a movie_id already in the table or twice in the file aborts with the line', async () => {
      const taken = file('taken.csv', `${HEADER}100,New,2000,1\n3,Already there,2000,1\n`);
      assert.match(
        await failure('import-movies', taken),
        /taken\.csv line 3: movie_id 3 already exists/,
      );
      const twice = file('twice.csv', `${HEADER}100,New,2000,1\n101,x,2000,1\n100,Again,2000,1\n`);
      assert.match(
        await failure('import-movies', twice),
        /twice\.csv line 4: movie_id 100 already exists/,
      );
      assert.equal(await exported(), TRICKY_CSV);
    });

    it('shows progress on stderr for a large file', async () => {
      const rows = Array.from({ length: 25_000 }, (_, i) =>
        csvLine({
          movie_id: 1000 + i,
          title: `A long enough title for movie number ${i}`,
          released: 1990,
          rating: 7.5,
        }),
      ).join('');
      const path = file('large.csv', HEADER + rows);
      const { exit, proc } = await cli('import-movies', path);
      assert.equal(exit.code, 0, proc.show());
      assert.match(proc.stdout, /imported 25000 movies/);
      const progress = proc.stderr.split('\n').filter((line) => line.startsWith('importing '));
      assert.ok(progress.length >= 2, proc.show());
      assert.match(progress[progress.length - 1] ?? '', /\(100%\)$/);
      const text = await exported();
      assert.equal((await parse(text, 65_536)).length - 1, TRICKY.length + 25_000);
    });
  },
);

describe('import-movies and export-movies beside a running embedded server', () => {
  it('go through the server’s socket: the import is visible to the API at once, a bad file changes nothing', async () => {
    const cwd = tempDir();
    const server = await startServer(cwd);
    try {
      const path = join(cwd, 'tricky.csv');
      writeFileSync(
        path,
        TRICKY_CSV.replace(/^(\d+),/gm, (_, id: string) => `${Number(id) + 500},`),
      );
      const imported = await runCli(['import-movies', path], cwd);
      assert.equal(imported.exit.code, 0, imported.proc.show());
      const bad = join(cwd, 'bad.csv');
      writeFileSync(bad, `${HEADER}900,x,2000,1\n901,y,2000,10.0\n`);
      const refused = await runCli(['import-movies', bad], cwd);
      assert.equal(refused.exit.code, 1, refused.proc.show());
      assert.match(refused.proc.stderr, /line 3: rating/);
      writeFileSync(bad, `${HEADER}902,"x\u0000",2000,1\n`);
      const nul = await runCli(['import-movies', bad], cwd);
      assert.equal(nul.exit.code, 1, nul.proc.show());
      assert.match(
        nul.proc.stderr,
        /^myapi: error: .*line 2: title must not contain a NUL character/,
      );
      const exported = await runCli(['export-movies'], cwd);
      assert.equal(exported.exit.code, 0, exported.proc.show());
      const records = (await parse(exported.proc.stdout, 65_536)).slice(1).map(movieFromRecord);
      assert.deepEqual(
        records.filter((m) => m.movie_id > 500),
        TRICKY.map((m) => ({ ...m, movie_id: m.movie_id + 500 })),
      );
      assert.equal(records.filter((m) => m.movie_id >= 900).length, 0);
      const created = await runCli(CREATE_USER_ARGS, cwd);
      assert.equal(created.exit.code, 0, created.proc.show());
      const token = await login(server.url);
      const response = await fetch(`${server.url}/movies/506`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.deepEqual(await response.json(), { ...TRICKY[5], movie_id: 506 });
    } finally {
      await server.stop();
    }
  });
});
