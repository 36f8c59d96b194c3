import { readFileSync } from 'node:fs';

/**
 * node dist/bench/cpu-profile-summary.js <file.cpuprofile> [TOP]
 * A V8 CPU profile (`node --cpu-prof`) summarised as text: self time by function and by where
 * the code lives (keyward, a package under node_modules, Node's own), in % of the busy samples
 * (not idle, not loading modules at start), and keyward functions with what they call. What
 * ADR 0028 quotes.
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2];
if (!file) throw new Error('usage: cpu-profile-summary <file.cpuprofile> [TOP]');
const top = Number(process.argv[3] ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

function place(url: string): string {
  if (url === '') return '(native)';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1];
  if (url.startsWith('node:')) return 'node';
  const own = /\/dist\/(.+)$/.exec(url);
  return own ? `keyward ${own[1].split('/').slice(0, 2).join('/')}` : url;
}

const self = new Map<string, number>();
const places = new Map<string, number>();
/** Time under any frame of a keyward function (inclusive), by function. */
const inclusive = new Map<string, number>();
let busy = 0;
let idle = 0;
let loading = 0;
/** Loading modules at start is not what a call costs; it is counted apart. */
function underModuleLoad(id: number): boolean {
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) if (byId.get(at)!.callFrame.functionName === 'Module._load') return true;
  return false;
}
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  const node = byId.get(id)!;
  const fn = node.callFrame.functionName || '(anonymous)';
  if (fn === '(idle)' || fn === '(program)') return void (idle += fn === '(idle)' ? dt : 0);
  if (underModuleLoad(id)) return void (loading += dt);
  busy += dt;
  const name = `${fn} ${place(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;
  self.set(name, (self.get(name) ?? 0) + dt);
  const where = place(node.callFrame.url);
  places.set(where, (places.get(where) ?? 0) + dt);
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const frame = byId.get(at)!.callFrame;
    if (!/\/dist\/(apps|libs)\//.test(frame.url)) continue;
    const key = `${frame.functionName || '(anonymous)'} ${place(frame.url)}:${frame.lineNumber + 1}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
  }
});

const pct = (t: number) => `${((100 * t) / busy).toFixed(1).padStart(5)} %`;
const list = (title: string, m: Map<string, number>, n: number) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) process.stdout.write(`  ${pct(t)}  ${k}\n`);
};
process.stdout.write(`busy ${(busy / 1e6).toFixed(2)} s (module loading at start: ${(loading / 1e6).toFixed(2)} s more, not counted), idle ${(idle / 1e6).toFixed(2)} s\n`);
list('self time by place', places, 20);
list('self time by function', self, top);
list('inclusive time of keyward functions', inclusive, top);
