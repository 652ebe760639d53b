// Compares two V8 heap snapshots (as memory.mjs --snapshots writes them): objects counted and
// sized by constructor name, the kinds that grew most first. A leak shows as a kind whose count
// grows with the load; a heap that levels off shows no such kind.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { textTable } from '../lib/common.mjs';

const USAGE = `usage: node bench/faults/heapdiff.mjs BEFORE.heapsnapshot AFTER.heapsnapshot [--top N]`;
const { values, positionals: files } = parseArgs({
  options: { top: { type: 'string', default: '25' } },
  allowPositionals: true,
});

/** Map "type:name" -> { count, size } over the snapshot's nodes. */
function census(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const byKind = new Map();
  const { nodes, strings } = snap;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    // Strings and code are named by their content: group them by type only.
    const name = ['object', 'closure', 'native', 'array'].includes(type)
      ? strings[nodes[i + iName]].slice(0, 60)
      : '';
    const key = `${type}:${name}`;
    const entry = byKind.get(key) ?? { count: 0, size: 0 };
    entry.count++;
    entry.size += nodes[i + iSize];
    byKind.set(key, entry);
  }
  return byKind;
}

const top = Number(values.top);
if (files.length !== 2 || !(top >= 1)) {
  console.error(USAGE);
  process.exit(2);
}
const [a, b] = files.map(census);
const total = (m) =>
  [...m.values()].reduce((s, e) => ({ count: s.count + e.count, size: s.size + e.size }), {
    count: 0,
    size: 0,
  });
const rows = [];
for (const key of new Set([...a.keys(), ...b.keys()])) {
  const x = a.get(key) ?? { count: 0, size: 0 };
  const y = b.get(key) ?? { count: 0, size: 0 };
  rows.push([key, x.count, y.count, y.count - x.count, Math.round((y.size - x.size) / 1024)]);
}
rows.sort((p, q) => q[4] - p[4] || q[3] - p[3]);
const [ta, tb] = [total(a), total(b)];
console.log(
  `objects ${ta.count} -> ${tb.count}; self size ${(ta.size / 2 ** 20).toFixed(1)} -> ${(tb.size / 2 ** 20).toFixed(1)} MiB`,
);
console.log(
  textTable(
    ['type:constructor', 'before', 'after', 'delta', 'delta KiB'],
    rows.slice(0, top),
    [1, 2, 3, 4],
  ),
);
