import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CsvError,
  CsvParser,
  checkHeader,
  csvLine,
  movieFromRecord,
  type CsvRecord,
} from '../src/services/movie_csv.js';
import { MovieService } from '../src/services/movies.js';
import {
  createServerDatabase,
  createTestDatabase,
  describeEachDatabase,
  moviesAnalyzed,
  TOKEN_KEY,
  type TestDatabase,
} from './support/databases.js';
import { CREATE_USER_ARGS, login, runCli, startServer, tempDir } from './support/process.js';

const HEADER = 'movie_id,title,released,rating\n';

/** Every record of `text`, fed in chunks of `size` characters (to cross chunk boundaries). */
function parse(text: string, size = 3): CsvRecord[] {
  const parser = new CsvParser();
  const records: CsvRecord[] = [];
  for (let i = 0; i < text.length; i += size) records.push(...parser.push(text.slice(i, i + size)));
  records.push(...parser.end());
  return records;
}

function csvFailure(work: () => unknown): CsvError {
  try {
    work();
  } catch (error) {
    assert.ok(error instanceof CsvError, String(error));
    return error;
  }
  assert.fail('expected a CsvError');
}

/** Titles that exercise the dialect: quotes, commas, line breaks, accents, blanks at the ends. */
const TRICKY = [
  { movie_id: 1, title: 'Plain', released: 1994, rating: 9.2 },
  { movie_id: 2, title: 'Comma, in the title', released: 1972, rating: 9 },
  { movie_id: 3, title: 'The "Quoted" One', released: 2008, rating: 0 },
  { movie_id: 4, title: 'Two\nlines', released: 1888, rating: 9.9 },
  { movie_id: 5, title: 'Windows\r\nline', released: 2100, rating: 5.5 },
  { movie_id: 6, title: 'Léon: Amélie, Ça 🎬 東京', released: 2001, rating: 8.3 },
  { movie_id: 7, title: ' leading and trailing ', released: 2000, rating: 1 },
  { movie_id: 8, title: '"', released: 2000, rating: 1 },
];
const TRICKY_CSV = HEADER + TRICKY.map(csvLine).join('');

describe('movies CSV dialect', () => {
  it('writes quotes only where needed, ratings with one decimal, LF line ends', () => {
    assert.equal(
      TRICKY_CSV,
      HEADER +
        '1,Plain,1994,9.2\n' +
        '2,"Comma, in the title",1972,9.0\n' +
        '3,"The ""Quoted"" One",2008,0.0\n' +
        '4,"Two\nlines",1888,9.9\n' +
        '5,"Windows\r\nline",2100,5.5\n' +
        '6,Léon: Amélie, Ça 🎬 東京,2001,8.3\n'.replace(
          'Léon: Amélie, Ça 🎬 東京',
          '"Léon: Amélie, Ça 🎬 東京"',
        ) +
        '7," leading and trailing ",2000,1.0\n' +
        '8,"""",2000,1.0\n',
    );
  });

  it('reads back exactly what it writes, whatever the chunk boundaries', () => {
    for (const size of [1, 2, 7, 1000]) {
      const records = parse(TRICKY_CSV, size);
      checkHeader(records[0]);
      assert.deepEqual(records.slice(1).map(movieFromRecord), TRICKY, `chunks of ${size}`);
    }
  });

  it('numbers records by the line they start on, CRLF and a BOM accepted', () => {
    const records = parse('\uFEFFmovie_id,title,released,rating\r\n1,"a\nb",2000,1\r\n2,c,2000,1');
    assert.deepEqual(
      records.map((r) => [r.line, r.fields]),
      [
        [1, ['movie_id', 'title', 'released', 'rating']],
        [2, ['1', 'a\nb', '2000', '1']],
        [4, ['2', 'c', '2000', '1']],
      ],
    );
  });

  it('names the line and the reason of malformed text', () => {
    const cases: [string, number, RegExp][] = [
      [`${HEADER}1,"never closed,2000,1\n2,x,2000,1\n`, 2, /quoted field is never closed/],
      [`${HEADER}1,a"b,2000,1\n`, 2, /quote inside an unquoted field/],
      [`${HEADER}1,"a"b,2000,1\n`, 2, /unexpected "b" after a closing quote/],
      [`${HEADER}1,a,2000,1\rx`, 2, /carriage return/],
    ];
    for (const [text, line, reason] of cases) {
      const error = csvFailure(() => parse(text));
      assert.equal(error.line, line, text);
      assert.match(error.message, reason);
      assert.match(error.message, new RegExp(`^line ${line}: `));
    }
  });

  it('refuses rows the columns cannot hold, naming the line', () => {
    const cases: [string, RegExp][] = [
      ['1,a,2000,10.0', /rating must be 0\.0 to 9\.9/],
      ['1,a,2000,10', /rating/],
      ['1,a,2000,-0.1', /rating/],
      ['1,a,2000,8.25', /rating/],
      ['1,a,2000,', /rating/],
      ['1,a,0,1', /released must be a year from 1888 to 2100/],
      ['1,a,1887,1', /released/],
      ['1,a,2101,1', /released/],
      ['1,a,20x0,1', /released/],
      ['1,,2000,1', /title must not be empty/],
      ['1,"   ",2000,1', /title must not be empty/],
      [`1,${'x'.repeat(501)},2000,1`, /title is 501 characters, at most 500/],
      [`1,${'x'.repeat(10 * 1024 * 1024)},2000,1`, /title is 10485760 characters/],
      ['0,a,2000,1', /movie_id must be a whole number/],
      ['2147483648,a,2000,1', /movie_id/],
      ['-1,a,2000,1', /movie_id/],
      ['1,a,2000', /expected 4 fields .* found 3/],
      ['1,a,b,2000,1', /expected 4 fields/],
      ['', /expected 4 fields .* found 1/],
    ];
    for (const [row, reason] of cases) {
      const records = parse(`${HEADER}2,ok,2000,1\n${row}\n`, 4096);
      const error = csvFailure(() => records.slice(1).map(movieFromRecord));
      assert.equal(error.line, 3, row.slice(0, 40));
      assert.match(error.message, reason, row.slice(0, 40));
    }
    const edges = parse(`${HEADER}2147483647,${'é'.repeat(500)},1888,0\n1,a,2100,9.9\n`);
    assert.equal(edges.slice(1).map(movieFromRecord).length, 2);
  });

  it('requires the header, exactly', () => {
    for (const text of ['', 'id,title,released,rating\n', 'movie_id,title,rating,released\n']) {
      const records = parse(text);
      const error = csvFailure(() => {
        checkHeader(records[0]);
      });
      assert.equal(error.line, 1);
    }
  });
});

async function* chunksOf(text: string, size: number): AsyncGenerator<string> {
  for (let i = 0; i < text.length; i += size) {
    await Promise.resolve();
    yield text.slice(i, i + size);
  }
}

/** The service behind the commands, in process on both databases (the commands are below). */
describeEachDatabase('MovieService CSV import and export', (kind) => {
  const opened: TestDatabase[] = [];
  after(async () => {
    for (const t of opened) await t.close();
  });
  const fresh = async () => {
    const t = await createTestDatabase(kind);
    opened.push(t);
    return new MovieService(t.database);
  };
  const exportOf = async (service: MovieService, pageSize?: number) => {
    let text = '';
    await service.exportCsv(async (chunk) => {
      text += chunk;
    }, pageSize);
    return text;
  };
  const importFailure = async (work: Promise<unknown>): Promise<CsvError> => {
    try {
      await work;
    } catch (error) {
      assert.ok(error instanceof CsvError, String(error));
      return error;
    }
    assert.fail('expected a CsvError');
  };

  it('round-trips byte for byte through two databases, in pages, whatever the chunks', async () => {
    const first = await fresh();
    assert.equal(await exportOf(first), HEADER);
    assert.deepEqual(await first.importCsv(chunksOf(TRICKY_CSV, 5)), { inserted: 8, total: 8 });
    const exported = await exportOf(first, 3);
    assert.equal(exported, TRICKY_CSV);
    const second = await fresh();
    await second.importCsv(chunksOf(exported, 4096));
    assert.equal(Buffer.compare(Buffer.from(await exportOf(second)), Buffer.from(TRICKY_CSV)), 0);
  });

  it('a bad row after whole batches were inserted leaves the table as it was', async () => {
    const service = await fresh();
    await service.importCsv(chunksOf(TRICKY_CSV, 4096));
    const good = Array.from({ length: 250 }, (_, i) =>
      csvLine({ movie_id: 100 + i, title: `Movie ${i}`, released: 2000, rating: 5 }),
    ).join('');
    const batches: number[] = [];
    const error = await importFailure(
      service.importCsv(
        chunksOf(`${HEADER}${good}999,Ten,2000,10.0\n`, 1000),
        (done) => batches.push(done),
        100,
      ),
    );
    assert.deepEqual(batches, [100, 200], 'two batches went in before the bad row');
    assert.equal(error.line, 252);
    assert.match(error.message, /^line 252: rating must be 0\.0 to 9\.9/);
    assert.equal(await exportOf(service), TRICKY_CSV);
  });

  it('a movie_id already there, or twice in the file, is refused with its line', async () => {
    const service = await fresh();
    await service.importCsv(chunksOf(TRICKY_CSV, 4096));
    const taken = await importFailure(
      service.importCsv(chunksOf(`${HEADER}100,New,2000,1\n3,Again,2000,1\n`, 4096)),
    );
    assert.equal(taken.message, 'line 3: movie_id 3 already exists');
    const twice = await importFailure(
      service.importCsv(
        chunksOf(`${HEADER}100,New,2000,1\n101,x,2000,1\n100,Again,2000,1\n`, 4096),
      ),
    );
    assert.equal(twice.message, 'line 4: movie_id 100 already exists');
    const empty = await importFailure(service.importCsv(chunksOf('', 1)));
    assert.equal(empty.line, 1);
    assert.equal(await exportOf(service), TRICKY_CSV);
  });
});

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
      assert.equal(parse(text, 65_536).length - 1, TRICKY.length + 25_000);
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
      const exported = await runCli(['export-movies'], cwd);
      assert.equal(exported.exit.code, 0, exported.proc.show());
      const records = parse(exported.proc.stdout, 65_536).slice(1).map(movieFromRecord);
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
