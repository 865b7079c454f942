/**
 * @module bench/main — `deno task bench`: the pipeline end to end against the raw pgmq ceiling,
 * on PostgreSQL (DATABASE_URL; a fresh database `darkroom_bench_*` created and dropped) or on
 * PGlite (`--pglite`), with the real local platform in a subprocess (bench/platform_proc.ts) so
 * its RSS and CPU are its own. Prints a table and writes a JSON report (bench/results/latest.json
 * unless `--out`). `--help` lists the flags.
 */
import postgres from "postgres";
import jpeg from "jpeg-js";
import { parseArgs } from "node:util";
import { dirname } from "node:path";
import { loadAverage, type ProcStats, procStats } from "./proc.ts";

const HELP = `deno task bench [flags]
  --n N               images of the backlog run (default 2000)
  --pglite            run on PGlite instead of the PostgreSQL at DATABASE_URL
  --out FILE          report path (default bench/results/latest.json)
  --scaling LIST      worker concurrencies to measure (default 1,2,4,8,16)
  --scale-n N         images per scaling run (default n/2)
  --backlogs LIST     backlogs a new image is timed behind (default 1000,10000)
  --big               also behind a backlog of 100000
  --idle-seconds S    idle window for the idle load (default 10)
  --rate-seconds S    longest run at half the maximum rate (default 20)
  --images KIND       tiny (generated 96x64 JPEGs, default) or fixtures (camera JPEGs)
  --cpu-prof DIR      write a V8 CPU profile of the main platform run into DIR
  --log-level LEVEL   the platform's LOG_LEVEL (default info, as deno task start)`;

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "2000" },
    pglite: { type: "boolean", default: false },
    out: { type: "string" },
    scaling: { type: "string", default: "1,2,4,8,16" },
    "scale-n": { type: "string" },
    backlogs: { type: "string", default: "1000,10000" },
    big: { type: "boolean", default: false },
    "idle-seconds": { type: "string", default: "10" },
    "rate-seconds": { type: "string", default: "20" },
    images: { type: "string", default: "tiny" },
    "cpu-prof": { type: "string" },
    "log-level": { type: "string", default: "info" },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  console.log(HELP);
  Deno.exit(0);
}
const N = positive("n", args.n);
const SCALE_N = args["scale-n"] ? positive("scale-n", args["scale-n"]) : Math.max(20, N >> 1);
const SCALING = list("scaling", args.scaling);
const BACKLOGS = [...list("backlogs", args.backlogs), ...(args.big ? [100_000] : [])];
const IDLE_SECONDS = positive("idle-seconds", args["idle-seconds"]);
const RATE_SECONDS = positive("rate-seconds", args["rate-seconds"]);
const OUT = args.out ?? new URL("./results/latest.json", import.meta.url).pathname;
const BATCH = 100; // POST /tasks/batch takes 1–100
const SUBMIT_IN_FLIGHT = 4;

function positive(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) usage(`--${name} must be a positive number`);
  return n;
}
function list(name: string, v: string | undefined): number[] {
  const out = (v ?? "").split(",").filter(Boolean).map((x) => positive(name, x));
  return out;
}
function usage(msg: string): never {
  console.error(`${msg}\n\n${HELP}`);
  Deno.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Images: unique per URL (unique bytes too, so content-addressed storage reuses nothing).

const fixtureJpegs = args.images === "fixtures"
  ? await Promise.all(
    ["canon_powershot_s40.jpg", "nikon_d70.jpg", "konica_minolta_z3.jpg"].map((f) =>
      Deno.readFile(new URL(`../tests/fixtures/images/${f}`, import.meta.url))
    ),
  )
  : [];
if (args.images !== "tiny" && args.images !== "fixtures") usage("--images is tiny or fixtures");

/**
 * Distinct tiny JPEGs, made once: encoding one in JS costs the harness 5-20 ms of CPU, which at
 * hundreds of images a second would take a core from the pipeline it measures.
 */
const TINY_KINDS = 32;
const tinyJpegs = new Map<number, Uint8Array>();

function tinyJpeg(k: number): Uint8Array {
  let made = tinyJpegs.get(k);
  if (made) return made;
  const width = 96, height = 64;
  const data = new Uint8Array(width * height * 4);
  let seed = k + 1;
  for (let p = 0; p < width * height; p++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    data[p * 4] = (p % width) * 2 + (seed & 15);
    data[p * 4 + 1] = Math.floor(p / width) * 3 + ((seed >> 8) & 15);
    data[p * 4 + 2] = (seed >> 16) & 255;
    data[p * 4 + 3] = 255;
  }
  made = new Uint8Array(jpeg.encode({ data, width, height }, 80).data);
  tinyJpegs.set(k, made);
  return made;
}

/**
 * Image `i` of run `key`: a camera JPEG or a tiny one, with a unique tail after its end-of-image
 * marker, so every image has its own sha256 (no analysis is reused) and decodes the same.
 */
function imageBytes(key: string, i: number): Uint8Array<ArrayBuffer> {
  const base = fixtureJpegs.length > 0
    ? fixtureJpegs[i % fixtureJpegs.length]
    : tinyJpeg(i % TINY_KINDS);
  const tail = new TextEncoder().encode(`bench:${key}:${i}`);
  const out = new Uint8Array(base.length + tail.length);
  out.set(base);
  out.set(tail, base.length);
  return out;
}

// Made before anything is timed.
if (fixtureJpegs.length === 0) { for (let k = 0; k < TINY_KINDS; k++) tinyJpeg(k); }

const imageServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
  const m = /^\/img\/([\w-]+)\/(\d+)\.jpg$/.exec(new URL(req.url).pathname);
  if (!m) return new Response("not found", { status: 404 });
  return new Response(imageBytes(m[1], Number(m[2])), {
    headers: { "content-type": "image/jpeg" },
  });
});
const imageBase = `http://127.0.0.1:${imageServer.addr.port}/img`;

// ---------------------------------------------------------------------------------------------
// The database.

const ENGINE: "postgres" | "pglite" = args.pglite ? "pglite" : "postgres";
const baseUrl = Deno.env.get("DATABASE_URL") || "postgres://postgres@127.0.0.1:5432/postgres";
const benchDbName = `darkroom_bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
let benchDbUrl: string | undefined;
let dataDir: string | undefined;
if (ENGINE === "postgres") {
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${benchDbName}`);
  await admin.end();
  const u = new URL(baseUrl);
  u.pathname = `/${benchDbName}`;
  benchDbUrl = u.toString();
} else {
  dataDir = await Deno.makeTempDir({ prefix: "darkroom_bench_" });
}

async function cleanup() {
  await imageServer.shutdown();
  if (benchDbUrl) {
    const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
    await admin.unsafe(`drop database if exists ${benchDbName} with (force)`);
    await admin.end();
  }
  if (dataDir) await Deno.remove(dataDir, { recursive: true });
}

// ---------------------------------------------------------------------------------------------
// The platform subprocess.

interface Proc {
  url: string;
  control: string;
  serviceRoleKey: string;
  pgmq: string;
  pid: number;
  child: Deno.ChildProcess;
  /** The last lines of its stderr, for a failure report. */
  stderrTail: string[];
  /** Control calls made (each one statement, one transaction: subtracted from xact deltas). */
  controlCalls: number;
  stop(): Promise<void>;
}

/** The V8 flags of `deno task start` (deno.json): the bench runs the platform as a user does. */
const START_V8_FLAGS = (JSON.parse(
  await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
).tasks.start as string).split(/\s+/).filter((a) => a.startsWith("--v8-flags="));

async function startProc(workerConcurrency: number, cpuProfDir?: string): Promise<Proc> {
  const env: Record<string, string> = {
    PORT: "0",
    AI_PROVIDER: "local",
    ALLOW_PRIVATE_NETWORK: "true",
    WORKER_CONCURRENCY: String(workerConcurrency),
    LOG_LEVEL: args["log-level"]!,
    DATABASE_URL: benchDbUrl ?? "",
    SUPABASE_DB_URL: "",
    DATA_DIR: dataDir ?? ".data",
  };
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...START_V8_FLAGS,
      ...(cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`] : []),
      new URL("./platform_proc.ts", import.meta.url).pathname,
    ],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderrTail: string[] = [];
  (async () => {
    for await (const line of lines(child.stderr)) {
      stderrTail.push(line);
      if (stderrTail.length > 40) stderrTail.shift();
    }
  })();
  const out = lines(child.stdout);
  let ready: Record<string, unknown> | undefined;
  for await (const line of out) {
    if (line.startsWith("BENCH_READY ")) {
      ready = JSON.parse(line.slice("BENCH_READY ".length));
      break;
    }
  }
  if (!ready) {
    throw new Error(`The platform did not start:\n${stderrTail.join("\n")}`);
  }
  // Keep draining its log, as a terminal would.
  (async () => {
    for await (const _ of out) { /* drained */ }
  })();
  const proc: Proc = {
    ...(ready as { url: string; control: string; serviceRoleKey: string; pgmq: string }),
    pid: child.pid,
    child,
    stderrTail,
    controlCalls: 0,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
  return proc;
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf;
}

async function ctl<T>(p: Proc, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${p.control}${path}`, {
    method: body === undefined ? "GET" : "POST",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`control ${path}: ${json.error}`);
  return json as T;
}

async function sql<T = Record<string, unknown>>(p: Proc, text: string, params: unknown[] = []) {
  p.controlCalls++;
  return await ctl<T[]>(p, "/query", { sql: text, params });
}

interface Counters extends ProcStats {
  statements: number;
  transactions: number;
}

// ---------------------------------------------------------------------------------------------
// Submitting and waiting.

interface Submitted {
  ids: string[];
  /** Client clock (ms since epoch) when each task's request started. */
  submittedAt: Map<string, number>;
}

async function api(p: Proc, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${p.url}/functions/v1/api${path}`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${p.serviceRoleKey}`,
      "content-type": "application/json",
    },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (res.status !== 202) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Submits `count` images in batches of 100, a few requests in flight ("all at once"). */
async function submitBacklog(p: Proc, key: string, count: number): Promise<Submitted> {
  const out: Submitted = { ids: [], submittedAt: new Map() };
  const batches: number[][] = [];
  for (let i = 0; i < count; i += BATCH) {
    batches.push(Array.from({ length: Math.min(BATCH, count - i) }, (_, j) => i + j));
  }
  let next = 0;
  const results: string[][] = [];
  await Promise.all(
    Array.from({ length: SUBMIT_IN_FLIGHT }, async () => {
      while (next < batches.length) {
        const b = next++;
        const at = Date.now();
        const res = await api(p, "/tasks/batch", {
          tasks: batches[b].map((i) => ({ imageUrl: `${imageBase}/${key}/${i}.jpg` })),
        });
        const ids = (res.tasks as { taskId: string }[]).map((t) => t.taskId);
        for (const id of ids) out.submittedAt.set(id, at);
        results[b] = ids;
      }
    }),
  );
  out.ids = results.flat();
  return out;
}

/** Submits one image with POST /tasks. */
async function submitOne(p: Proc, key: string, i: number, into: Submitted): Promise<string> {
  const at = Date.now();
  const res = await api(p, "/tasks", { imageUrl: `${imageBase}/${key}/${i}.jpg` });
  const id = res.taskId as string;
  into.submittedAt.set(id, at);
  into.ids.push(id);
  return id;
}

const TERMINAL = "('completed', 'failed', 'cancelled')";

/** Waits until every task is completed, failed or cancelled. */
async function waitTerminal(p: Proc, ids: string[], timeoutMs = 30 * 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [row] = await sql<{ open: number }>(
      p,
      `select count(*)::int as open from public.tasks
        where id = any($1::uuid[]) and status not in ${TERMINAL}`,
      [ids],
    );
    if (row.open === 0) return;
    await sleep(250);
  }
  throw new Error(`tasks still open after ${timeoutMs} ms`);
}

interface Outcome {
  completed: number;
  failed: number;
  /** submit → task.completed, ms, per completed task. */
  latencies: number[];
  /** The last task.completed, client clock ms. */
  lastDoneAt: number;
  firstSubmitAt: number;
}

async function outcome(p: Proc, s: Submitted): Promise<Outcome> {
  const rows = await sql<{ id: string; status: string; done_ms: number | null }>(
    p,
    `select t.id, t.status, (extract(epoch from e.created_at) * 1000)::float8 as done_ms
       from public.tasks t
       left join public.events e on e.task_id = t.id and e.event_type = 'task.completed'
      where t.id = any($1::uuid[])`,
    [s.ids],
  );
  const latencies: number[] = [];
  let lastDoneAt = 0, failed = 0;
  for (const r of rows) {
    if (r.status !== "completed" || r.done_ms === null) {
      failed++;
      continue;
    }
    latencies.push(Number(r.done_ms) - s.submittedAt.get(r.id)!);
    lastDoneAt = Math.max(lastDoneAt, Number(r.done_ms));
  }
  return {
    completed: latencies.length,
    failed,
    latencies,
    lastDoneAt,
    firstSubmitAt: Math.min(...s.submittedAt.values()),
  };
}

function percentiles(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] : 0;
  const r = (x: number) => Math.round(x * 10) / 10;
  return { p50: r(at(0.5)), p95: r(at(0.95)), p99: r(at(0.99)), max: r(at(1)) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** Transactions committed or rolled back in the bench database (PostgreSQL's statistics). */
async function xacts(p: Proc): Promise<number | null> {
  if (ENGINE !== "postgres") return null;
  // Backends report their statistics when idle for a second at the latest.
  await sleep(1_200);
  const [row] = await sql<{ x: number }>(
    p,
    `select (xact_commit + xact_rollback)::float8 as x from pg_stat_database
      where datname = current_database()`,
  );
  return Number(row.x);
}

/** CPU seconds of the PostgreSQL backends serving the bench database, by pid. */
async function backendCpu(p: Proc): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  if (ENGINE !== "postgres") return out;
  const rows = await sql<{ pid: number }>(
    p,
    "select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()",
  );
  for (const r of rows) {
    try {
      out.set(r.pid, (await procStats(r.pid)).cpuSeconds);
    } catch { /* gone */ }
  }
  return out;
}
function backendCpuDelta(a: Map<number, number>, b: Map<number, number>): number {
  let sum = 0;
  for (const [pid, cpu] of b) sum += cpu - (a.get(pid) ?? 0);
  return sum;
}

async function pgStatStatements(p: Proc): Promise<{ available: boolean; reason?: string }> {
  if (ENGINE !== "postgres") return { available: false, reason: "PGlite" };
  const [row] = await sql<{ preload: string; avail: boolean }>(
    p,
    `select current_setting('shared_preload_libraries') as preload,
            exists (select 1 from pg_available_extensions where name = 'pg_stat_statements') as avail`,
  );
  if (!row.avail) return { available: false, reason: "extension not installed" };
  if (!/pg_stat_statements/.test(row.preload)) {
    return { available: false, reason: "not in shared_preload_libraries" };
  }
  await sql(p, "create extension if not exists pg_stat_statements");
  return { available: true };
}
async function statementCalls(p: Proc): Promise<number> {
  const [row] = await sql<{ calls: number }>(
    p,
    `select coalesce(sum(calls), 0)::float8 as calls from pg_stat_statements s
       join pg_database d on d.oid = s.dbid where d.datname = current_database()`,
  );
  return Number(row.calls);
}

/** Waits until the subscribers' queues are empty; the ms it took. */
async function drainSubscribers(p: Proc, queues: string[]): Promise<number> {
  const started = Date.now();
  if (queues.length === 0) return 0;
  for (;;) {
    const [row] = await sql<{ n: number }>(
      p,
      `select coalesce(sum(queue_length), 0)::int as n from pgmq.metrics_all()
        where queue_name = any($1::text[])`,
      [queues],
    );
    if (row.n === 0) return Date.now() - started;
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------------------------
// The stage workers' batch settings, read from their definitions (not copied).

async function stageSettings() {
  const { downloadStage } = await import("../shared/workers/download.ts");
  const { metadataStage } = await import("../shared/workers/metadata.ts");
  const { aiStage } = await import("../shared/workers/ai.ts");
  // deno-lint-ignore no-explicit-any
  const dummy: any = { provider: { name: "local" }, timeoutMs: 15_000 };
  const defs = [downloadStage(dummy), metadataStage(dummy), aiStage(dummy)];
  return defs.map((d) => ({
    stage: d.stage as string,
    batchSize: d.batchSize ?? 8,
    concurrency: d.concurrency ?? 4,
    vtSeconds: d.visibilityTimeoutSeconds ?? 60,
  }));
}

// ---------------------------------------------------------------------------------------------
// The run.

/** Writes the report as it stands (`complete` false while phases remain). */
async function save(complete: boolean) {
  const result = {
    complete,
    startedAt,
    finishedAt: new Date().toISOString(),
    engine: ENGINE,
    n: N,
    images: args.images,
    platform: "local/platform.ts in a subprocess (bench/platform_proc.ts), AI_PROVIDER=local, " +
      `LOG_LEVEL=${args["log-level"]}, ${
        START_V8_FLAGS.join(" ") || "no V8 flags"
      } (as deno task start)`,
    machine: {
      cpus: navigator.hardwareConcurrency,
      cpuModel: (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1] ??
        "unknown",
      memTotalMb: Math.round(Deno.systemMemoryInfo().total / 2 ** 20),
      deno: Deno.version.deno,
      loadAverageStart: loadStart,
      loadAverageEnd: await loadAverage(),
    },
    ...report,
  };
  await Deno.mkdir(dirname(OUT), { recursive: true });
  await Deno.writeTextFile(OUT, JSON.stringify(result, null, 2) + "\n");
  return result;
}

const log = (msg: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const startedAt = new Date().toISOString();
const loadStart = await loadAverage();
const stages = await stageSettings();
// deno-lint-ignore no-explicit-any
const report: Record<string, any> = {};

let main: Proc | undefined;
try {
  log(`engine ${ENGINE}${benchDbUrl ? ` (${benchDbName})` : ""}; starting the platform`);
  if (args["cpu-prof"]) await Deno.mkdir(args["cpu-prof"], { recursive: true });
  main = await startProc(1, args["cpu-prof"]);
  let p = main;
  const registry = await sql<{ worker: string; kind: string; queue: string }>(
    p,
    "select worker_function as worker, kind, queue from darkroom.worker_queues order by position",
  );
  const subscribers = registry.filter((w) => w.kind === "subscriber");
  const stmts = await pgStatStatements(p);

  // Warm-up: JIT, the compute pool, connections.
  const warm = await submitBacklog(p, "warmup", 20);
  await waitTerminal(p, warm.ids);
  await drainSubscribers(p, subscribers.map((s) => s.queue));

  // Idle load.
  log(`idle load over ${IDLE_SECONDS} s`);
  const idle0 = await ctl<Counters>(p, "/counters");
  const idleX0 = await xacts(p);
  const idleCalls0 = p.controlCalls;
  await sleep(IDLE_SECONDS * 1000);
  const idle1 = await ctl<Counters>(p, "/counters");
  const idleX1 = await xacts(p);
  const idleSecs = IDLE_SECONDS + (idleX0 === null ? 0 : 1.2);
  const workers = registry.length; // one scheduler loop each at concurrency 1
  const idleXacts = idleX0 === null
    ? idle1.transactions - idle0.transactions
    : idleX1! - idleX0 - (p.controlCalls - idleCalls0);
  report.idle = {
    seconds: idleSecs,
    workers,
    queriesPerSecondPerWorker: round((idle1.statements - idle0.statements) / idleSecs / workers, 3),
    transactionsPerSecondPerWorker: round(idleXacts / idleSecs / workers, 3),
    transactionsPerSecond: round(idleXacts / idleSecs, 2),
    cpuSecondsPerMinute: round((idle1.cpuSeconds - idle0.cpuSeconds) / idleSecs * 60, 3),
  };

  // The raw pgmq ceiling, same database, same pool, the stage workers' settings.
  log(`raw pgmq: ${3 * N} message cycles`);
  const rawPgmq = await ctl<Record<string, number>>(p, "/raw-pgmq", {
    n: N,
    sendBatch: BATCH,
    stages,
    message: { taskId: crypto.randomUUID(), traceId: crypto.randomUUID() },
  });

  // The backlog: N images at once.
  log(`backlog: ${N} images`);
  const c0 = await ctl<Counters>(p, "/counters");
  const x0 = await xacts(p);
  const pg0 = await backendCpu(p);
  const calls0 = stmts.available ? await statementCalls(p) : 0;
  const ctl0 = p.controlCalls;
  const texts0 = await ctl<Record<string, number>>(p, "/statements");
  const backlog = await submitBacklog(p, "backlog", N);
  await waitTerminal(p, backlog.ids);
  const o = await outcome(p, backlog);
  const c1 = await ctl<Counters>(p, "/counters");
  await drainSubscribers(p, subscribers.map((s) => s.queue));
  const fanoutDrainedAt = Date.now();
  const c2 = await ctl<Counters>(p, "/counters");
  const texts1 = await ctl<Record<string, number>>(p, "/statements");
  const pg1 = await backendCpu(p);
  const x1 = await xacts(p);
  const calls1 = stmts.available ? await statementCalls(p) : 0;
  const ctlUsed = p.controlCalls - ctl0;
  const seconds = (o.lastDoneAt - o.firstSubmitAt) / 1000;
  const imagesPerSecond = o.completed / seconds;
  report.backlog = {
    images: N,
    completed: o.completed,
    failed: o.failed,
    seconds: round(seconds),
    imagesPerSecond: round(imagesPerSecond),
    latencyMs: percentiles(o.latencies),
  };
  report.fanout = {
    subscribers: subscribers.map((s) => s.worker),
    running: subscribers.length > 0,
    // How long after the last task.completed their queues were empty (polled every 200 ms).
    drainedMsAfterLastCompletion: Math.round(Math.max(0, fanoutDrainedAt - o.lastDoneAt)),
  };
  const pipelineRate = 3 * imagesPerSecond;
  report.rawPgmq = {
    messages: rawPgmq.messages,
    seconds: round(rawPgmq.seconds),
    messagesPerSecond: round(rawPgmq.messagesPerSecond),
    stages,
    pipelineStageMessagesPerSecond: round(pipelineRate),
    pipelineToRawRatio: round(pipelineRate / rawPgmq.messagesPerSecond, 3),
  };
  const dbTx = c2.transactions - c0.transactions;
  report.db = {
    statementsPerImage: round((c2.statements - c0.statements) / N, 2),
    statementsSource: "platform Db layer (round trips: SQL inside functions not counted)",
    transactionsPerImage: round(x0 === null ? dbTx / N : (x1! - x0 - ctlUsed) / N, 2),
    transactionsSource: x0 === null ? "platform Db layer" : "pg_stat_database xact deltas",
    dbLayerTransactionsPerImage: round(dbTx / N, 2),
    // The platform's statements by text, per image, most frequent first.
    topStatementsPerImage: Object.entries(texts1)
      .map(([text, n]) => ({ text, perImage: round((n - (texts0[text] ?? 0)) / N, 3) }))
      .filter((s) => s.perImage > 0)
      .sort((a, b) => b.perImage - a.perImage)
      .slice(0, 15),
    pgStatStatements: stmts.available
      ? { available: true, callsPerImage: round((calls1 - calls0 - ctlUsed) / N, 2) }
      : stmts,
    idle: report.idle,
  };
  delete report.idle;
  report.process = {
    cpuSecondsPer1000Images: round((c1.cpuSeconds - c0.cpuSeconds) / N * 1000, 2),
    postgresCpuSecondsPer1000Images: ENGINE === "postgres"
      ? round(backendCpuDelta(pg0, pg1) / N * 1000, 2)
      : null,
    platformCoresBusy: round((c1.cpuSeconds - c0.cpuSeconds) / seconds, 2),
    peakRssMbAfterBacklog: round(c2.peakRssMb, 1),
  };

  // At half the maximum rate.
  const rate = imagesPerSecond / 2;
  const count = Math.max(10, Math.min(N, Math.round(rate * RATE_SECONDS)));
  log(`offered rate: ${count} images at ${round(rate, 1)}/s`);
  const paced: Submitted = { ids: [], submittedAt: new Map() };
  const t0 = performance.now();
  const sends: Promise<string>[] = [];
  for (let i = 0; i < count; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    sends.push(submitOne(p, "rate", i, paced));
  }
  await Promise.all(sends);
  await waitTerminal(p, paced.ids);
  const po = await outcome(p, paced);
  report.offeredRate = {
    imagesPerSecond: round(rate),
    images: count,
    completed: po.completed,
    failed: po.failed,
    latencyMs: percentiles(po.latencies),
  };
  await drainSubscribers(p, subscribers.map((s) => s.queue));

  // One invocation of each worker on a full batch, nothing else running in the process.
  log("one invocation per worker on a full batch");
  await ctl(p, "/scheduler/stop", {});
  const full = Math.max(...stages.map((s) => s.batchSize));
  const inv = await submitBacklog(p, "invocation", full);
  const invocations: Record<string, Record<string, number>> = {};
  const invoke = async (worker: string) => {
    const r = await ctl<
      {
        status: number;
        summary: { read: number };
        wallMs: number;
        cpuMs: number;
        rssMb: number;
        heapGrowthMb: number;
      }
    >(p, "/invoke", { worker });
    if (r.status !== 200) throw new Error(`${worker} answered ${r.status}`);
    const best = invocations[worker];
    if (!best || r.summary.read > best.messages) {
      invocations[worker] = {
        messages: r.summary.read,
        cpuMs: round(r.cpuMs, 1),
        wallMs: round(r.wallMs, 1),
        processRssMb: round(r.rssMb, 1),
        heapGrowthMb: round(r.heapGrowthMb, 2),
      };
    }
    return r.summary.read;
  };
  for (const w of registry.filter((w) => w.kind === "stage")) {
    while (await invoke(w.worker) > 0) { /* until its queue is empty */ }
  }
  for (const w of subscribers) await invoke(w.worker);
  const invOutcome = await outcome(p, inv);
  report.invocation = { tasks: full, completed: invOutcome.completed, workers: invocations };
  report.pgmq = p.pgmq;
  report.process.peakRssMb = round((await ctl<Counters>(p, "/counters")).peakRssMb, 1);
  await save(false);
  await p.stop();
  main = undefined;

  // Scaling.
  report.scaling = [];
  for (const k of SCALING) {
    log(`scaling: worker concurrency ${k}, ${SCALE_N} images`);
    const q = await startProc(k);
    try {
      const w = await submitBacklog(q, `warm${k}`, 10);
      await waitTerminal(q, w.ids);
      const s0 = await ctl<Counters>(q, "/counters");
      const s = await submitBacklog(q, `scale${k}`, SCALE_N);
      await waitTerminal(q, s.ids);
      const so = await outcome(q, s);
      const s1 = await ctl<Counters>(q, "/counters");
      const secs = (so.lastDoneAt - so.firstSubmitAt) / 1000;
      report.scaling.push({
        workerConcurrency: k,
        images: SCALE_N,
        completed: so.completed,
        imagesPerSecond: round(so.completed / secs),
        latencyMs: percentiles(so.latencies),
        cpuSecondsPer1000Images: round((s1.cpuSeconds - s0.cpuSeconds) / SCALE_N * 1000, 2),
      });
      await drainSubscribers(q, subscribers.map((s) => s.queue));
    } finally {
      await q.stop();
    }
    await save(false);
  }

  // One new image behind a backlog (last: the longest part; the report is saved after each).
  report.backlogLatency = [];
  main = await startProc(1);
  p = main;
  const bw = await submitBacklog(p, "warmup2", 10);
  await waitTerminal(p, bw.ids);
  for (const b of BACKLOGS) {
    log(`one image behind a backlog of ${b}`);
    const s = await submitBacklog(p, `behind${b}`, b);
    const [row] = await sql<{ open: number }>(
      p,
      `select count(*)::int as open from public.tasks
        where id = any($1::uuid[]) and status not in ${TERMINAL}`,
      [s.ids],
    );
    const probe: Submitted = { ids: [], submittedAt: new Map() };
    await submitOne(p, `probe${b}`, 0, probe);
    await waitTerminal(p, probe.ids);
    const pr = await outcome(p, probe);
    await waitTerminal(p, s.ids);
    report.backlogLatency.push({
      backlog: b,
      openAtSubmit: row.open,
      latencyMs: round(pr.latencies[0] ?? NaN, 1),
    });
    await drainSubscribers(p, subscribers.map((s) => s.queue));
    await save(false);
  }
  const afterAll = await ctl<Counters>(p, "/counters");
  report.process.peakRssMb = Math.max(report.process.peakRssMb, round(afterAll.peakRssMb, 1));
  await p.stop();
  main = undefined;
} catch (err) {
  if (main) console.error(main.stderrTail.join("\n"));
  await main?.stop().catch(() => {});
  await cleanup();
  throw err;
}
await cleanup();

const result = await save(true);
printTable(result);
console.log(`\nwritten: ${OUT}`);

// deno-lint-ignore no-explicit-any
function printTable(r: Record<string, any>) {
  const rows: [string, string][] = [
    ["engine / pgmq", `${r.engine} / ${r.pgmq}`],
    ["machine", `${r.machine.cpus} cores, load ${r.machine.loadAverageStart.join(" ")}`],
    [`backlog of ${r.n}`, `${r.backlog.imagesPerSecond} images/s (${r.backlog.failed} failed)`],
    ["  latency p50/p95/p99", ms(r.backlog.latencyMs)],
    [`at ${r.offeredRate.imagesPerSecond}/s offered`, ms(r.offeredRate.latencyMs)],
    ["raw pgmq cycle", `${r.rawPgmq.messagesPerSecond} msg/s`],
    [
      "pipeline stage messages",
      `${r.rawPgmq.pipelineStageMessagesPerSecond} msg/s = ${
        round(r.rawPgmq.pipelineToRawRatio * 100, 1)
      }% of raw`,
    ],
    ["statements / image", `${r.db.statementsPerImage}`],
    ["transactions / image", `${r.db.transactionsPerImage} (${r.db.transactionsSource})`],
    [
      "idle per worker",
      `${r.db.idle.queriesPerSecondPerWorker} queries/s, ${r.db.idle.transactionsPerSecondPerWorker} tx/s`,
    ],
    ["platform CPU / 1000 images", `${r.process.cpuSecondsPer1000Images} s`],
    ["postgres CPU / 1000 images", `${r.process.postgresCpuSecondsPer1000Images ?? "-"} s`],
    ["peak RSS", `${r.process.peakRssMb} MB (${r.process.peakRssMbAfterBacklog} after backlog)`],
    ...Object.entries(r.invocation.workers).map(([w, v]) => {
      // deno-lint-ignore no-explicit-any
      const x = v as any;
      return [`  one ${w} call`, `${x.messages} msgs, ${x.cpuMs} ms CPU, ${x.wallMs} ms`] as [
        string,
        string,
      ];
    }),
    ...r.scaling.map((
      // deno-lint-ignore no-explicit-any
      s: any,
    ) => [
      `concurrency ${s.workerConcurrency}`,
      `${s.imagesPerSecond} images/s, ${ms(s.latencyMs)}`,
    ]),
    ...r.backlogLatency.map((
      // deno-lint-ignore no-explicit-any
      b: any,
    ) => [`behind ${b.backlog} queued`, `${b.latencyMs} ms (${b.openAtSubmit} open)`]),
    ["fan-out subscribers", `${r.fanout.subscribers.join(", ")}`],
  ];
  const w = Math.max(...rows.map((x) => x[0].length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
}
function ms(l: { p50: number; p95: number; p99: number }) {
  return `p50 ${l.p50} ms, p95 ${l.p95} ms, p99 ${l.p99} ms`;
}
