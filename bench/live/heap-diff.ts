/**
 * `node bench/live/heap-diff.ts before.heapsnapshot open.heapsnapshot N [top]`
 *
 * Self size and count by node type and name (a constructor, a closure's
 * function name, a string), open minus before, divided by N: what one of N
 * subscriptions holds, biggest first.
 */
import { readFileSync } from 'node:fs';

type Totals = Map<string, { size: number; count: number }>;

function totals(file: string): Totals {
  const snapshot = JSON.parse(readFileSync(file, 'utf8'));
  const meta = snapshot.snapshot.meta;
  const fields: string[] = meta.node_fields;
  const types: string[] = meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const { nodes, strings } = snapshot as { nodes: number[]; strings: string[] };
  const result: Totals = new Map();
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]!]!;
    let name = strings[nodes[i + nameAt]!]!;
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '';
    if (type === 'number') name = '';
    const key = `${type} ${name.slice(0, 80)}`;
    const entry = result.get(key) ?? { size: 0, count: 0 };
    entry.size += nodes[i + sizeAt]!;
    entry.count++;
    result.set(key, entry);
  }
  return result;
}

const [beforeFile, openFile, n, top] = process.argv.slice(2);
const count = Number(n);
const before = totals(beforeFile!);
const open = totals(openFile!);
const rows = [...open].map(([key, { size, count: c }]) => {
  const was = before.get(key) ?? { size: 0, count: 0 };
  return { key, bytes: (size - was.size) / count, count: (c - was.count) / count };
});
rows.sort((a, b) => b.bytes - a.bytes);
let total = 0;
for (const row of rows) total += row.bytes;
console.log(`total self size per subscription: ${total.toFixed(0)} B`);
for (const row of rows.slice(0, Number(top ?? 60))) console.log(`${row.bytes.toFixed(1).padStart(8)} B  ${row.count.toFixed(2).padStart(6)} /sub  ${row.key}`);
