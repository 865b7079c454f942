/**
 * @module check_functions — resolves each edge function's module graph the way the Supabase CLI
 * does (its own deno.json / deno.jsonc / import_map.json, else `import_map` under
 * `[functions.<name>]` in config.toml, else supabase/functions/import_map.json; never the root
 * deno.json), fails on any unresolved import or on a package the function must not carry
 * ({@linkcode DENY}), and prints each graph's size against the 20 MB limit of a deployed
 * function. Part of `deno task check`.
 */

const FUNCTIONS = new URL("../supabase/functions/", import.meta.url);
const CONFIG_TOML = new URL("../supabase/config.toml", import.meta.url);
const LIMIT_BYTES = 20 * 1024 * 1024;
const RUNNABLE = /\.(m?js|cjs|json|wasm)$/;

const HTTP_FRAMEWORK = ["hono", "@hono/zod-openapi"];
const DECODERS = ["jpeg-js", "fast-png", "omggif"];
/**
 * Packages each function must not import: each carries only what it runs. The api decodes no
 * image and calls no model; the workers serve no Hono app; the download worker only fetches,
 * sniffs and stores; only the ai worker calls OpenAI; the event subscribers run SQL (and the
 * notifier one signed POST). A function missing here fails the check.
 */
const DENY: Record<string, string[]> = {
  "api": ["exifr", "exifreader", ...DECODERS, "image-size", "file-type", "openai"],
  "download-worker": [
    ...HTTP_FRAMEWORK,
    "exifr",
    "exifreader",
    ...DECODERS,
    "image-size",
    "openai",
  ],
  "metadata-worker": [...HTTP_FRAMEWORK, "openai"],
  "ai-worker": [...HTTP_FRAMEWORK],
  "notification-worker": [
    ...HTTP_FRAMEWORK,
    "exifr",
    "exifreader",
    ...DECODERS,
    "image-size",
    "file-type",
    "openai",
  ],
  "analytics-worker": [
    ...HTTP_FRAMEWORK,
    "exifr",
    "exifreader",
    ...DECODERS,
    "image-size",
    "file-type",
    "openai",
  ],
  "tag-indexer-worker": [
    ...HTTP_FRAMEWORK,
    "exifr",
    "exifreader",
    ...DECODERS,
    "image-size",
    "file-type",
    "openai",
  ],
};

interface InfoModule {
  specifier: string;
  size?: number;
  error?: string;
}
interface Info {
  modules: InfoModule[];
  npmPackages?: Record<string, { name: string; version: string }>;
}

async function exists(url: URL): Promise<boolean> {
  try {
    await Deno.stat(url);
    return true;
  } catch {
    return false;
  }
}

/** The import map the CLI would use for `name`, as a path, or null when it finds none. */
async function importMapOf(name: string, toml: string): Promise<string | null> {
  for (const file of ["deno.json", "deno.jsonc", "import_map.json"]) {
    const url = new URL(`${name}/${file}`, FUNCTIONS);
    if (await exists(url)) return url.pathname;
  }
  const section = new RegExp(`\\[functions\\.${name}\\][^\\[]*?import_map\\s*=\\s*"([^"]+)"`);
  const m = section.exec(toml);
  if (m) return new URL(m[1], new URL("../supabase/", import.meta.url)).pathname;
  const shared = new URL("import_map.json", FUNCTIONS);
  return await exists(shared) ? shared.pathname : null;
}

/**
 * Bytes of an npm package's runnable files (.js, .mjs, .cjs, .json, .wasm; no typings, source
 * maps or docs) in the local node_modules copy: an upper bound of what the bundle carries, since
 * the bundler takes only the modules the graph reaches.
 */
async function npmPackageBytes(id: string, name: string): Promise<number> {
  const dir = new URL(
    `../node_modules/.deno/${id.replace("/", "+")}/node_modules/${name}/`,
    import.meta.url,
  );
  let total = 0;
  const walk = async (url: URL) => {
    for await (const entry of Deno.readDir(url)) {
      const child = new URL(entry.name + (entry.isDirectory ? "/" : ""), url);
      if (entry.isDirectory) await walk(child);
      else if (entry.isFile && RUNNABLE.test(entry.name)) total += (await Deno.stat(child)).size;
    }
  };
  try {
    await walk(dir);
  } catch {
    return 0; // not installed locally: counted as 0 rather than guessed
  }
  return total;
}

const toml = await Deno.readTextFile(CONFIG_TOML).catch(() => "");
let failed = false;
const rows: string[] = [];
for await (const entry of Deno.readDir(FUNCTIONS)) {
  if (!entry.isDirectory || !await exists(new URL(`${entry.name}/index.ts`, FUNCTIONS))) continue;
  const name = entry.name;
  const map = await importMapOf(name, toml);
  if (!map) {
    console.error(`${name}: no import map the Supabase CLI reads`);
    failed = true;
    continue;
  }
  const entryPath = new URL(`${name}/index.ts`, FUNCTIONS).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--no-config", "--import-map", map, entryPath],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    console.error(`${name}: cannot resolve its graph\n${new TextDecoder().decode(out.stderr)}`);
    failed = true;
    continue;
  }
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as Info;
  const broken = info.modules.filter((m) => m.error);
  for (const m of broken) console.error(`${name}: ${m.specifier}: ${m.error}`);
  if (broken.length > 0) failed = true;
  const local = info.modules.reduce((a, m) => a + (m.size ?? 0), 0);
  let npm = 0;
  for (const [id, pkg] of Object.entries(info.npmPackages ?? {})) {
    npm += await npmPackageBytes(id, pkg.name);
  }
  const total = local + npm;
  if (total > LIMIT_BYTES) {
    console.error(`${name}: graph of ${total} bytes may be over the 20 MB limit of a function`);
  }
  const pkgs = Object.values(info.npmPackages ?? {}).map((p) => p.name).sort();
  const deny = DENY[name];
  if (!deny) {
    console.error(
      `${name}: no deny list in scripts/check_functions.ts; write down what it must not import`,
    );
    failed = true;
  }
  const denied = pkgs.filter((p) => deny?.includes(p));
  if (denied.length > 0) {
    console.error(`${name}: imports ${denied.join(", ")}, which it must not carry`);
    failed = true;
  }
  rows.push(
    `${name.padEnd(16)} ${(total / 1024 / 1024).toFixed(1).padStart(5)} MB  ${
      String(info.modules.length).padStart(4)
    } modules  npm: ${pkgs.join(", ")}`,
  );
}
console.log(rows.sort().join("\n"));
if (failed) Deno.exit(1);
