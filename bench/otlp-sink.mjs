#!/usr/bin/env node
// An OTLP/HTTP receiver that only counts: the collector stand-in for measuring what tracing
// costs (bench/README.md, "Tracing"). Takes POST /v1/traces (JSON, as myapi exports), answers
// 200, and on SIGTERM or SIGINT appends how many exports and spans it received to the file given, as a JSON line.
//
// usage: node bench/otlp-sink.mjs PORT COUNTS_FILE
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [port, countsFile] = process.argv.slice(2);
if (!/^[0-9]+$/.test(port ?? '') || countsFile === undefined) {
  console.error('usage: node bench/otlp-sink.mjs PORT COUNTS_FILE');
  process.exit(2);
}
let exports = 0;
let spans = 0;
const server = createServer((request, response) => {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    if (request.method === 'POST' && request.url === '/v1/traces') {
      exports += 1;
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const resource of body.resourceSpans ?? []) {
        for (const scope of resource.scopeSpans ?? []) spans += (scope.spans ?? []).length;
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    } else {
      response.writeHead(404).end();
    }
  });
});
server.listen(Number(port), '127.0.0.1');
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    appendFileSync(countsFile, `${JSON.stringify({ exports, spans })}\n`);
    process.exit(0);
  });
}
