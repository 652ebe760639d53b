// Runs the test files found under test/ (every *.test.ts), optionally under c8's coverage floor.
//
// Node 20's `node --test` neither expands globs nor fails when it is given no file, so the files
// are found here and an empty list fails the run.
//
//   node test/run.mjs [--coverage] [--exclude=REGEX] [path ...]
//
// A path (a file or a folder under test/) narrows the run to the test files it names or holds;
// --exclude leaves out the files whose path (relative to the project) matches REGEX.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const testDir = join(root, 'test');

/** The line coverage of src/ (less src/data) that a run with --coverage must reach, as CI does. */
export const COVERAGE_FLOOR = { lines: 95 };

function testFiles(under) {
  const found = statSync(under).isFile()
    ? [under]
    : readdirSync(under, { recursive: true })
        .map((entry) => join(under, String(entry)))
        .filter((file) => !file.split(sep).includes('node_modules'));
  return found
    .filter((file) => file.endsWith('.test.ts') && statSync(file).isFile())
    .map((file) => relative(root, file))
    .sort();
}

const args = process.argv.slice(2);
const coverage = args.includes('--coverage');
const excludes = args
  .filter((arg) => arg.startsWith('--exclude='))
  .map((arg) => new RegExp(arg.slice('--exclude='.length)));
const paths = args.filter((arg) => !arg.startsWith('--'));
const files = [
  ...new Set((paths.length === 0 ? [testDir] : paths.map((p) => resolve(p))).flatMap(testFiles)),
].filter((file) => !excludes.some((exclude) => exclude.test(file)));
if (files.length === 0) {
  console.error(`no test file (*.test.ts) found under ${paths.join(', ') || 'test/'}`);
  process.exit(1);
}

const nodeTest = [
  process.execPath,
  '--import',
  'tsx',
  '--test',
  `--test-concurrency=${process.env.TEST_CONCURRENCY ?? '2'}`,
  ...files,
];
const c8 = createRequire(import.meta.url).resolve('c8/bin/c8.js');
const command = coverage
  ? [
      process.execPath,
      c8,
      '--check-coverage',
      '--all',
      '--src=src',
      `--lines=${COVERAGE_FLOOR.lines}`,
      // The CLI and servers run from dist/ in subprocesses; their source maps lead back to src/.
      '--include=src/**',
      '--include=dist/**',
      '--exclude-after-remap',
      '--exclude=dist/**',
      '--exclude=test/**',
      // Word lists and demo rows: data, which would count as covered lines of code.
      '--exclude=src/data/**',
      '--reporter=text-summary',
      '--reporter=text',
      '--report-dir=coverage',
      '--temp-directory=coverage/tmp',
      ...nodeTest,
    ]
  : nodeTest;

console.log(`${files.length} test files${coverage ? ', with coverage' : ''}`);
const child = spawn(command[0], command.slice(1), { cwd: root, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => child.kill(signal));
}
child.on('close', (code, signal) => {
  process.exit(code ?? (signal === null ? 1 : 128));
});
