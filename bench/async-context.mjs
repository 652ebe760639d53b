#!/usr/bin/env node
// What AsyncLocalStorage costs every promise of the process once it is in use (OpenTelemetry's
// context manager enters it for each sampled request): CPU per awaited call, before any store
// was entered, after one was (the hook stays on for the whole process), and inside one. On
// Node 20 the hook is a promise hook; Node 24 (AsyncContextFrame) keeps the context without one.
// See bench/README.md, "Tracing".
//
// usage: node bench/async-context.mjs
import { AsyncLocalStorage } from 'node:async_hooks';

const CALLS = 200_000;
const AWAITS_PER_CALL = 11;

async function leaf(i) {
  return i;
}

async function call() {
  let sum = 0;
  for (let k = 0; k < AWAITS_PER_CALL - 1; k++) sum += await leaf(k);
  return sum;
}

async function measure(label) {
  const before = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) await call();
  const used = process.cpuUsage(before);
  const perAwait = (used.user + used.system) / (CALLS * AWAITS_PER_CALL);
  console.log(`${label.padEnd(34)} ${perAwait.toFixed(3)} us per await`);
}

console.log(`Node ${process.version}`);
await measure('warm-up');
await measure('no AsyncLocalStorage used');
const storage = new AsyncLocalStorage();
storage.run({ request: 1 }, () => undefined);
await measure('after one run(), outside it');
await storage.run({ request: 2 }, () => measure('inside run()'));
