// The Node versions the project supports: every installed package accepts them (no EBADENGINE at
// `npm ci`), and the two packages pinned back by `overrides` for Node 20 work for their consumers.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import Fastify from 'fastify';
import semver from 'semver';

const root = new URL('../', import.meta.url);
const manifest = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
  engines: { node: string };
};
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8')) as {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
};

/** The oldest release of each supported line (ESLint 10 needs 22.13 on the 22 line). */
const SUPPORTED = ['20.19.0', '22.13.0', '24.0.0'];

it('package.json accepts every supported Node line', () => {
  for (const version of SUPPORTED) {
    assert.ok(semver.satisfies(version, manifest.engines.node), version);
  }
});

it('every package in package-lock.json accepts every supported Node line', () => {
  const refused: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
    if (path === '' || range === undefined) continue;
    for (const version of SUPPORTED) {
      if (!semver.satisfies(version, range)) refused.push(`${path}@${entry.version}: ${range}`);
    }
  }
  assert.deepEqual(refused, []);
});

it("light-my-request sends inject's cookies through the overridden cookie package", async () => {
  const app = Fastify();
  app.get('/', (request) => ({ cookie: request.headers.cookie }));
  const response = await app.inject({ url: '/', cookies: { name: 'a value', other: '1' } });
  assert.deepEqual(response.json(), { cookie: 'name=a%20value; other=1' });
  await app.close();
});
