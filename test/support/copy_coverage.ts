/**
 * Coverage of this project's code run in a copy of the project (test/generator.test.ts runs the
 * generated services' tests there, through the resource base classes). Under c8, subprocesses
 * write V8 coverage into NODE_V8_COVERAGE with the copy's paths, which c8 would not count; the
 * entries of files identical to this project's are moved onto this project's paths, and the
 * rest (the generated files) are left out.
 */
import { readdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface ScriptCoverage {
  url: string;
}
interface CoverageFile {
  result: ScriptCoverage[];
  'source-map-cache'?: Record<string, unknown>;
}

function sameFile(a: string, b: string): boolean {
  return existsSync(b) && readFileSync(a).equals(readFileSync(b));
}

/** Rewrites the coverage files written since `since` (ms) by processes that ran in `copy`. */
export function claimCopyCoverage(copy: string, project: string, since: number): number {
  const folder = process.env.NODE_V8_COVERAGE;
  if (folder === undefined || !existsSync(folder)) return 0;
  const copyUrl = pathToFileURL(copy).href;
  const projectUrl = pathToFileURL(project).href;
  let claimed = 0;
  for (const name of readdirSync(folder)) {
    const path = join(folder, name);
    if (!name.endsWith('.json') || statSync(path).mtimeMs < since) continue;
    const text = readFileSync(path, 'utf8');
    if (!text.includes(copyUrl)) continue;
    const coverage = JSON.parse(text) as CoverageFile;
    const keep = (url: string) =>
      !url.startsWith(`${copyUrl}/`) ||
      sameFile(fileURLToPath(url), join(project, url.slice(copyUrl.length + 1)));
    coverage.result = coverage.result.filter(({ url }) => keep(url));
    const cache = coverage['source-map-cache'];
    if (cache !== undefined) {
      coverage['source-map-cache'] = Object.fromEntries(
        Object.entries(cache).filter(([url]) => keep(url)),
      );
    }
    claimed += coverage.result.filter(({ url }) => url.startsWith(copyUrl)).length;
    writeFileSync(
      path,
      JSON.stringify(coverage).replaceAll(copyUrl, projectUrl).replaceAll(copy, project),
    );
  }
  return claimed;
}
