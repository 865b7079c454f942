/**
 * @module bench/profile_top — the top entries of V8 CPU profiles (`deno task bench --cpu-prof
 * DIR` writes one per isolate of the platform): self time by function and by module.
 *
 *   deno run -A bench/profile_top.ts DIR [--top 15]
 */
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { top: { type: "string", default: "15" } },
  allowPositionals: true,
});
const dir = positionals[0];
if (!dir) {
  console.error("usage: deno run -A bench/profile_top.ts DIR [--top 15]");
  Deno.exit(2);
}
const top = Number(values.top);

/** Where a frame's code comes from: an npm package, one of our files, or the runtime. */
function moduleOf(url: string): string {
  if (!url) return "(runtime / native)";
  const npm = /node_modules\/\.deno\/([^/]+)\//.exec(url) ?? /npm\/[^/]+\/([^/]+)\//.exec(url);
  if (npm) return `npm:${npm[1].replace(/@[\d.]+$/, "")}`;
  const ours = /\/(local|shared|bench|supabase)\/(.*)$/.exec(url);
  if (ours) return `${ours[1]}/${ours[2]}`;
  if (url.startsWith("ext:")) return url.split("/").slice(0, 2).join("/");
  return url.replace(/^.*\//, "");
}

for await (const entry of Deno.readDir(dir)) {
  if (!entry.name.endsWith(".cpuprofile")) continue;
  const p: Profile = JSON.parse(await Deno.readTextFile(`${dir}/${entry.name}`));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  });
  const byFn = new Map<string, number>();
  const byModule = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const name = `${f.functionName || "(anonymous)"} ${moduleOf(f.url)}:${f.lineNumber + 1}`;
    byFn.set(name, (byFn.get(name) ?? 0) + us);
    const m = f.url ? moduleOf(f.url) : f.functionName;
    byModule.set(m, (byModule.get(m) ?? 0) + us);
  }
  const show = (title: string, m: Map<string, number>) => {
    console.log(`\n${title}`);
    for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(
        `${(us / 1000).toFixed(0).padStart(8)} ms ${
          (100 * us / total).toFixed(1).padStart(5)
        }%  ${k}`,
      );
    }
  };
  console.log(`# ${entry.name}: ${(total / 1e6).toFixed(1)} s sampled`);
  show("self time by function", byFn);
  show("self time by module", byModule);
}
