// `npm run faults`: the fault scenarios of issue 17 against the built server, each on its own
// private PostgreSQL cluster (initdb/pg_ctl in a temp dir, a free port of 127.0.0.1) or embedded
// database. Prints each scenario's figures and checks; exits 1 when a check failed.
import path from 'node:path';
import { build, commandLine, runMain, tempDir, toJson, writeJson } from '../lib/common.mjs';
import { SCENARIOS } from './scenarios/index.mjs';

const USAGE = `usage: npm run faults -- [options]
  --only A,B     run only these scenarios (default: all); --list shows them
  --quick        shorter loads and waits (what test/faults.test.ts runs)
  --json FILE    also write every scenario's figures and checks as JSON
  --no-build     do not run npm run build first
  --list         list the scenarios and exit`;

const { values } = commandLine('faults', USAGE, {
  only: { type: 'string' },
  quick: { type: 'boolean', default: false },
  json: { type: 'string' },
  'no-build': { type: 'boolean', default: false },
  list: { type: 'boolean', default: false },
});

runMain(async () => {
  if (values.list) {
    for (const [name, s] of Object.entries(SCENARIOS)) console.log(`${name.padEnd(22)} ${s.about}`);
    return 0;
  }
  const names = values.only ? values.only.split(',').map((s) => s.trim()) : Object.keys(SCENARIOS);
  const unknown = names.filter((n) => !(n in SCENARIOS));
  if (unknown.length > 0) {
    console.error(`faults: unknown scenario ${unknown.join(', ')} (--list shows them)`);
    return 2;
  }
  if (!values['no-build']) build();
  const dir = tempDir('myapi-faults-');
  console.error(`== logs in ${dir}`);
  const results = {};
  let failed = 0;
  for (const name of names) {
    const started = performance.now();
    console.log(`\n== ${name}: ${SCENARIOS[name].about}`);
    let result;
    try {
      result = await SCENARIOS[name].run({ dir: path.join(dir), quick: values.quick });
    } catch (error) {
      result = {
        figures: {},
        checks: [
          { ok: false, what: `the scenario ran (${error instanceof Error ? error.stack : error})` },
        ],
      };
    }
    result.seconds = Math.round((performance.now() - started) / 100) / 10;
    results[name] = result;
    console.log(toJson(result.figures).trimEnd());
    for (const c of result.checks) {
      // `known` names the issue item a failing check belongs to (a defect being fixed).
      const known = !c.ok && c.known ? ` [known: ${c.known}]` : '';
      console.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.what}${known}`);
    }
    failed += result.checks.filter((c) => !c.ok).length;
  }
  if (values.json) writeJson(values.json, results);
  console.log(`\n${failed === 0 ? 'every check held' : `${failed} check(s) failed`}`);
  return failed === 0 ? 0 : 1;
});
