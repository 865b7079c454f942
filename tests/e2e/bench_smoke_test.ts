// `deno task bench` at a smoke size, as a subprocess on the run's engine (PostgreSQL when
// DATABASE_URL is set, else PGlite): it finishes, and its report (written to a temp path, not the
// committed bench/results/latest.json) has every field, with sane values. No speed is asserted.
import assert from "node:assert/strict";
import { ENGINE } from "../_helpers/db.ts";

const ROOT = new URL("../../", import.meta.url);
const BENCH = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks.bench as string;

/** Numbers that may be 0 in a healthy run. */
const MAY_BE_ZERO = new Set([
  "failed",
  "drainedMsAfterLastCompletion",
  "heapGrowthMb",
  "openAtSubmit",
]);

/** Every number under `value` with its path. */
function numbers(value: unknown, path = "$"): [string, number][] {
  if (typeof value === "number") return [[path, value]];
  if (Array.isArray(value)) return value.flatMap((v, i) => numbers(v, `${path}[${i}]`));
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => numbers(v, `${path}.${k}`));
  }
  return [];
}

function assertLatency(l: { p50: number; p95: number; p99: number; max: number }, what: string) {
  assert.ok(l.p50 > 0, `${what}: p50 ${l.p50}`);
  assert.ok(l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max, `${what}: ${JSON.stringify(l)}`);
}

Deno.test({
  name: "the bench runs at N=100 and reports every figure",
  // The report is read from a file the subprocess writes; nothing here leaks.
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "darkroom-bench-" });
    const out = `${dir}/latest.json`;
    const [program, ...taskArgs] = BENCH.split(/\s+/);
    assert.equal(program, "deno");
    const scaling = [1, 2, 4, 8, 16];
    const run = await new Deno.Command(Deno.execPath(), {
      args: [
        ...taskArgs,
        ...(ENGINE === "pglite" ? ["--pglite"] : []),
        "--n=100",
        `--scaling=${scaling.join(",")}`,
        "--scale-n=20",
        "--backlogs=30",
        "--idle-seconds=2",
        "--rate-seconds=2",
        "--log-level=warn",
        `--out=${out}`,
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(run.stdout);
    const stderr = new TextDecoder().decode(run.stderr);
    assert.equal(run.code, 0, `bench failed:\n${stdout}\n${stderr}`);
    assert.match(stdout, /raw pgmq cycle\s+\d/);
    const r = JSON.parse(await Deno.readTextFile(out));
    await Deno.remove(dir, { recursive: true });

    assert.equal(r.complete, true);
    assert.equal(r.engine, ENGINE);
    assert.equal(r.n, 100);
    // Every number is finite; all but a few are positive.
    const all = numbers(r);
    assert.ok(all.length > 60, `only ${all.length} numbers`);
    for (const [path, n] of all) {
      assert.ok(Number.isFinite(n), `${path} = ${n}`);
      const key = path.split(".").at(-1)!;
      if (MAY_BE_ZERO.has(key)) assert.ok(key === "heapGrowthMb" || n >= 0, `${path} = ${n}`);
      else assert.ok(n > 0, `${path} = ${n}`);
    }

    assert.equal(r.backlog.completed, 100);
    assert.equal(r.backlog.failed, 0);
    assertLatency(r.backlog.latencyMs, "backlog");
    assert.equal(r.offeredRate.completed, r.offeredRate.images);
    assertLatency(r.offeredRate.latencyMs, "offered rate");
    // Half the measured maximum, by definition.
    assert.ok(Math.abs(r.offeredRate.imagesPerSecond - r.backlog.imagesPerSecond / 2) < 0.02);

    assert.equal(r.rawPgmq.messages, 300);
    assert.equal(r.rawPgmq.stages.length, 3);
    assert.ok(
      Math.abs(r.rawPgmq.pipelineStageMessagesPerSecond - 3 * r.backlog.imagesPerSecond) < 0.1,
    );
    assert.ok(
      Math.abs(
        r.rawPgmq.pipelineToRawRatio -
          r.rawPgmq.pipelineStageMessagesPerSecond / r.rawPgmq.messagesPerSecond,
      ) < 0.01,
    );

    // An image takes at least one statement per stage and one transaction to submit.
    assert.ok(r.db.statementsPerImage >= 3, `statements per image ${r.db.statementsPerImage}`);
    assert.ok(r.db.transactionsPerImage >= 1);
    assert.equal(typeof r.db.pgStatStatements.available, "boolean");
    assert.ok(r.db.topStatementsPerImage.length > 0);
    assert.ok(r.db.idle.workers >= 6, "3 stage workers and 3 subscribers");

    assert.ok(r.process.peakRssMb >= r.process.peakRssMbAfterBacklog);
    if (ENGINE === "postgres") assert.ok(r.process.postgresCpuSecondsPer1000Images > 0);
    else assert.equal(r.process.postgresCpuSecondsPer1000Images, null);

    // One invocation of each worker: the stages on a full batch, the subscribers too.
    const inv = r.invocation.workers;
    for (const w of ["download-worker", "metadata-worker", "ai-worker"]) {
      assert.ok(inv[w]?.messages > 0, `${w} handled nothing`);
    }
    assert.equal(inv["metadata-worker"].messages, r.rawPgmq.stages[1].batchSize);
    assert.equal(r.invocation.completed, r.invocation.tasks);

    assert.deepEqual(
      r.scaling.map((s: { workerConcurrency: number }) => s.workerConcurrency),
      scaling,
    );
    for (const s of r.scaling) {
      assert.equal(s.completed, 20);
      assertLatency(s.latencyMs, `concurrency ${s.workerConcurrency}`);
    }
    assert.deepEqual(r.backlogLatency.map((b: { backlog: number }) => b.backlog), [30]);

    assert.deepEqual(r.fanout.subscribers.toSorted(), [
      "analytics-worker",
      "notification-worker",
      "tag-indexer-worker",
    ]);
    assert.equal(r.fanout.running, true);
    assert.equal(r.machine.cpus, navigator.hardwareConcurrency);
    assert.equal(r.machine.loadAverageStart.length, 3);
  },
});
