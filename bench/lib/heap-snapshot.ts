/**
 * Reading V8 heap snapshots (`--heapsnapshot-signal`): a process's live objects summed by kind
 * (constructor name, `closure <name>`, or a V8 type such as `(array)`), and what one snapshot
 * holds more than another per unit (per open stream). Only what bench/stream-heap.ts prints.
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** Count and self size in bytes of each kind of object in the snapshot file. */
export function heapByKind(file: string): Map<string, { count: number; bytes: number }> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!;
    const name = snap.strings[snap.nodes[i + nameAt]!]!;
    const kind = type === 'object' ? name : type === 'closure' ? `closure ${name || '(anonymous)'}` : `(${type})`;
    const entry = out.get(kind) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += snap.nodes[i + sizeAt]!;
    out.set(kind, entry);
  }
  return out;
}

export interface HeapGrowth {
  /** Bytes more in `after` than in `before`, per unit. */
  bytesPerUnit: number;
  /** The kinds that grew most: bytes and objects per unit. */
  top: { kind: string; bytes: number; objects: number }[];
}

/** What `after` holds more than `before`, divided by `units`, with the `topN` kinds that grew most. */
export function heapGrowth(before: string, after: string, units: number, topN = 20): HeapGrowth {
  const a = heapByKind(before);
  const b = heapByKind(after);
  const rows = [...b].map(([kind, { count, bytes }]) => ({ kind, bytes: (bytes - (a.get(kind)?.bytes ?? 0)) / units, objects: (count - (a.get(kind)?.count ?? 0)) / units }));
  const bytesPerUnit = rows.reduce((sum, r) => sum + r.bytes, 0);
  return { bytesPerUnit, top: rows.sort((x, y) => y.bytes - x.bytes).slice(0, topN) };
}
