// `serve --workers N`: the primary aggregates every worker's registry (prom-client's cluster support).
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Exposition, Scrape } from './http.js';
import type { PrometheusMetrics } from './registry.js';

const ASK = 'myapi:metrics-ask';
const ANSWER = 'myapi:metrics-answer';
/** prom-client gives up on a silent worker after 5 s; a worker waits a little longer for the primary. */
const ANSWER_WITHIN_MS = 6_000;

type Ask = { type: typeof ASK; id: number };
type Answer =
  | { type: typeof ANSWER; id: number; body: string }
  | { type: typeof ANSWER; id: number; error: string };

const isMessage = (message: unknown, type: string): message is { type: string; id: number } =>
  typeof message === 'object' &&
  message !== null &&
  'type' in message &&
  message.type === type &&
  'id' in message &&
  typeof message.id === 'number';

/**
 * In the primary: a scrape of every worker, summed by prom-client's AggregatorRegistry (gauges
 * and counters summed, histograms bucket by bucket; the event-loop figures averaged). Workers
 * that scrape on their own port (MYAPI_METRICS__TOKEN) ask here too, so every scrape is whole.
 */
export function clusterScrape(): Scrape {
  const aggregator = new AggregatorRegistry();
  const scrape: Scrape = async () => ({
    contentType: aggregator.contentType,
    body: await aggregator.clusterMetrics(),
  });
  cluster.on('message', (worker: Worker, message: unknown) => {
    if (!isMessage(message, ASK)) return;
    const { id } = message as Ask;
    const reply = (answer: Answer) => {
      if (worker.isConnected()) worker.send(answer);
    };
    scrape().then(
      ({ body }) => {
        reply({ type: ANSWER, id, body });
      },
      (error: unknown) => {
        reply({ type: ANSWER, id, error: error instanceof Error ? error.message : String(error) });
      },
    );
  });
  return scrape;
}

/**
 * In a worker: lets the primary read this worker's registry, and returns the scrape a worker
 * serves on the API's port, which asks the primary for the whole cluster's figures.
 */
export function workerScrape(metrics: PrometheusMetrics): Scrape {
  AggregatorRegistry.setRegistries([metrics.registry]);
  let nextId = 0;
  const waiting = new Map<
    number,
    { resolve: (e: Exposition) => void; reject: (e: Error) => void }
  >();
  process.on('message', (message: unknown) => {
    if (!isMessage(message, ANSWER)) return;
    const answer = message as Answer;
    const pending = waiting.get(answer.id);
    waiting.delete(answer.id);
    if (pending === undefined) return;
    if ('body' in answer)
      pending.resolve({ contentType: metrics.registry.contentType, body: answer.body });
    else pending.reject(new Error(`the primary could not gather the metrics: ${answer.error}`));
  });
  return () =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('the primary did not answer the metrics request in time'));
      }, ANSWER_WITHIN_MS);
      waiting.set(id, {
        resolve: (exposition) => {
          clearTimeout(timer);
          resolve(exposition);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      process.send?.({ type: ASK, id } satisfies Ask);
    });
}
