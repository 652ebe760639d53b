// Prometheus' text format read back, promtool's verdict, and a real Prometheus server for a test.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { delay, freePort, PROCESS_TIMEOUT_MS } from './process.js';

export const PROMTOOL = '/usr/bin/promtool';
export const PROMETHEUS = '/usr/bin/prometheus';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The samples of an exposition (comments skipped). */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = LINE.exec(line);
    assert.ok(match?.[1] !== undefined && match[3] !== undefined, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, name, value] of (match[2] ?? '').matchAll(LABEL)) {
      if (name !== undefined && value !== undefined) labels[name] = value;
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** The sum of the samples named `name` whose labels include `labels` (0 when there is none). */
export function valueOf(
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string> = {},
): number {
  return samples
    .filter(
      (sample) =>
        sample.name === name &&
        Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    )
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** `promtool check metrics` on the text: its exit code and what it printed. */
export function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, output });
    });
    child.stdin.end(text);
  });
}

interface QueryAnswer {
  status: string;
  data?: {
    resultType: string;
    result: { metric: Record<string, string>; value: [number, string] }[];
  };
}

/** A Prometheus server on a private port and data directory, scraping one target every second. */
export class PrometheusServer {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly url: string,
    private readonly output: () => string,
  ) {}

  static async start(target: string): Promise<PrometheusServer> {
    const dir = mkdtempSync(join(tmpdir(), 'myapi-prometheus-'));
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        'scrape_configs:',
        '  - job_name: myapi',
        '    static_configs:',
        `      - targets: ['${target}']`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    const child = spawn(
      PROMETHEUS,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    return new PrometheusServer(child, dir, `http://127.0.0.1:${port}`, () => output);
  }

  /** An instant query over the HTTP API; undefined until Prometheus answers one. */
  async query(expression: string): Promise<QueryAnswer | undefined> {
    try {
      const response = await fetch(
        `${this.url}/api/v1/query?${new URLSearchParams({ query: expression }).toString()}`,
      );
      if (response.status !== 200) return undefined;
      return (await response.json()) as QueryAnswer;
    } catch {
      return undefined; // not listening yet
    }
  }

  /** Polls the query until one series has `expected` as its value; fails after the timeout. */
  async waitForValue(expression: string, expected: number, timeoutMs = PROCESS_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    let last: QueryAnswer | undefined;
    for (;;) {
      assert.ok(this.child.exitCode === null, `prometheus exited\n${this.output()}`);
      last = await this.query(expression);
      const series = last?.data?.result ?? [];
      if (series.length === 1 && Number(series[0]?.value[1]) === expected) return series[0];
      if (Date.now() > deadline) {
        assert.fail(
          `prometheus never answered ${expected} to ${expression}: last ${JSON.stringify(last)}\n${this.output()}`,
        );
      }
      await delay(250);
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
