/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and aggregates self time by function and by module
 * group: an npm package, a node: core area, a file of this project, or V8's own buckets
 * ((garbage collector), (program), (idle)). Inclusive time per project file and package is also
 * given (time with that code anywhere on the stack), which shows what a step costs in total.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface Row {
  name: string;
  ms: number;
  percent: number;
}

export interface ProfileSummary {
  /** Whether only the samples of the requested window were used (false: the whole profile). */
  windowed: boolean;
  totalMs: number;
  idleMs: number;
  byFunction: Row[];
  byGroup: Row[];
  inclusiveByGroup: Row[];
}

/** The group a frame belongs to. `root` is the project's root directory (to shorten paths). */
export function groupOf(frame: CallFrame, root: string): string {
  const { url, functionName } = frame;
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) {
    const parts = url.slice(5).split('/');
    return `node:${parts.slice(0, parts[0] === 'internal' ? 2 : 1).join('/')}`;
  }
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  return path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path;
}

function shortLocation(frame: CallFrame, root: string): string {
  const path = frame.url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  const shown = nm !== -1 ? path.slice(nm + '/node_modules/'.length) : path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path;
  return shown === '' ? '' : ` ${shown}:${frame.lineNumber + 1}`;
}

function top(map: Map<string, number>, totalMs: number, n: number): Row[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: us / 1000, percent: (100 * us) / 1000 / totalMs }));
}

/**
 * `window`: only samples taken within [fromUs, toUs] of the monotonic clock (process.hrtime's,
 * which V8's profile timestamps share on Linux), e.g. the load run without the start-up.
 */
export function summariseProfile(path: string, root: string, n = 25, window?: { fromUs: number; toUs: number }): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  let at = profile.startTime;
  const inWindow = profile.timeDeltas.map((delta) => {
    at += delta;
    return window === undefined || (at >= window.fromUs && at <= window.toUs);
  });
  const windowed = window !== undefined && inWindow.some(Boolean);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    if (windowed && !inWindow[i]) continue;
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byGroup = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const group = groupOf(frame, root);
    if (group === '(idle)') idleUs += us;
    const fn = `${frame.functionName || '(anonymous)'}${shortLocation(frame, root)}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    byGroup.set(group, (byGroup.get(group) ?? 0) + us);
    // Inclusive: count this sample once for every distinct group on its stack.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const g = groupOf(byId.get(cur)!.callFrame, root);
      if (!seen.has(g)) {
        seen.add(g);
        inclusive.set(g, (inclusive.get(g) ?? 0) + us);
      }
    }
  }
  const totalMs = totalUs / 1000;
  return {
    windowed,
    totalMs,
    idleMs: idleUs / 1000,
    byFunction: top(byFunction, totalMs, n),
    byGroup: top(byGroup, totalMs, n),
    inclusiveByGroup: top(inclusive, totalMs, n).filter((r) => !r.name.startsWith('(')),
  };
}

export function renderProfile(s: ProfileSummary): string {
  const table = (title: string, rows: Row[]) =>
    [title, ...rows.map((r) => `${r.ms.toFixed(0).padStart(8)} ms ${r.percent.toFixed(1).padStart(5)}%  ${r.name}`)].join('\n');
  return [
    `Profile (${s.windowed ? 'load window only' : 'whole process life, start-up included'}): ${s.totalMs.toFixed(0)} ms sampled, of which idle ${s.idleMs.toFixed(0)} ms (${((100 * s.idleMs) / s.totalMs).toFixed(1)}%)`,
    table('Self time by module group:', s.byGroup),
    table('Self time by function:', s.byFunction),
    table('Inclusive time by module group (code anywhere on the stack):', s.inclusiveByGroup),
  ].join('\n\n');
}
