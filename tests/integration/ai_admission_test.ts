// Releasing without spending a try (darkroom.release_stage through the stage runner's StageWait),
// the provider buckets (darkroom.take_provider_tokens) and admission (darkroom.admit_analysis:
// reuse, in-flight claims, budgets), on a real database: PGlite, or PostgreSQL when DATABASE_URL
// is set. One database for the file; each test empties the stage queues and makes its own keys.
import assert from "node:assert/strict";
import { asRole, openTestDb, purgeStageQueues, type TestDb } from "../_helpers/db.ts";
import { type AdmissionSettings, admitAnalysis } from "../../shared/ai/admission.ts";
import type { Db, Queryable } from "../../shared/db.ts";
import { silentLogger } from "../../shared/log.ts";
import { runStageBatch, type StageDefinition, StageWait } from "../../shared/stage_runner.ts";
import { createTask, getTask, listTaskEvents } from "../../shared/tasks.ts";

let t: TestDb | undefined;
Deno.test.beforeAll(async () => {
  t = await openTestDb();
});
Deno.test.afterAll(async () => {
  await t?.close();
});

function test(name: string, fn: (db: Db) => Promise<void>): void {
  Deno.test({
    name,
    // PGlite's own timers may start in one test and fire in the next: not checked for leaks.
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      await purgeStageQueues(t!.db);
      await fn(t!.db);
    },
  });
}

const SETTINGS: AdmissionSettings = {
  crossTenant: false,
  claimSeconds: 60,
  reusePollSeconds: 2,
  estimatedTokens: 100,
  budgetRecheckSeconds: 5,
  dailyTokens: null,
  dailyUsd: null,
  ownerDailyTokens: null,
  ownerDailyUsd: null,
  requestsPerWindow: 1000,
  tokensPerWindow: 1_000_000,
  windowSeconds: 60,
  burst: 0.1,
};

/** A task moved to the AI stage (its image row made), claimed as begin_stage would. */
async function taskAtAi(db: Queryable, sha256: string, owner: string | null = null) {
  const { taskId } = await createTask(
    db,
    { imageUrl: "http://example.com/a.jpg" },
    owner ?? undefined,
  );
  await db.query(
    `update public.tasks set stage = 'ai', status = 'processing', attempts = '{"ai": 1}'
      where id = $1::uuid`,
    [taskId],
  );
  await db.query(
    `insert into public.images (task_id, owner, sha256, content_type, byte_size, storage_path)
     values ($1::uuid, $2::uuid, $3, 'image/jpeg', 10, 'x')`,
    [taskId, owner, sha256],
  );
  return taskId;
}

const hex = () => crypto.randomUUID().replaceAll("-", "").repeat(2);
const ANALYSIS = {
  provider: "openai",
  model: "m",
  caption: "A photo",
  tags: ["a", "b", "c"],
  safety: { adult: false, violence: false, selfHarm: false },
  usage: { promptTokens: 80, completionTokens: 20, totalTokens: 100 },
};

/** Sends an AI message for `taskId` and completes the stage as the worker would. */
async function complete(db: Queryable, taskId: string, result: Record<string, unknown>) {
  const [{ send: msgId }] = await db.query<{ send: number }>(
    `select pgmq.send('ai_processing', jsonb_build_object('taskId', $1::text)) as send`,
    [taskId],
  );
  const [{ r }] = await db.query<{ r: string }>(
    `select darkroom.complete_stage($1::uuid, 'ai', $2::bigint, $3::jsonb, 'ai-worker') as r`,
    [taskId, msgId, JSON.stringify(result)],
  );
  return r;
}

test("a StageWait releases the message without a try, MAX_ATTEMPTS times over and more", async (db) => {
  const { taskId } = await createTask(db, { imageUrl: "http://example.com/a.jpg" });
  const def: StageDefinition<"download"> = {
    stage: "download",
    source: "download-worker",
    visibilityTimeoutSeconds: 30,
    run() {
      throw new StageWait(1, "budget", { budget: "global" });
    },
  };
  const deps = { db, log: silentLogger, maxAttempts: 2 };
  for (let i = 0; i < 5; i++) {
    const s = await runStageBatch(deps, def);
    assert.equal(s.deferred, 1, `release ${i + 1}: ${JSON.stringify(s)}`);
    assert.equal(s.failed + s.retried + s.ignored, 0);
    const task = await getTask(db, taskId);
    assert.equal(task?.status, "queued");
    assert.equal(task?.waiting, "budget");
    assert.equal(task?.attempts.download, 0, "no try spent");
    assert.ok(task?.waitingUntil);
    // Visible again only after the delay: make it visible now for the next round.
    const [{ hidden }] = await db.query<{ hidden: boolean }>(
      "select vt > now() as hidden from pgmq.q_image_download",
    );
    assert.equal(hidden, true, "released with a visibility timeout");
    await db.query("update pgmq.q_image_download set vt = now()");
  }
  const types = (await listTaskEvents(db, taskId)).map((e) => e.eventType);
  assert.deepEqual(types, ["task.created", "task.throttled"], "one task.throttled per wait");
});

test("take_provider_tokens() never admits more than the limit in a window", async (db) => {
  const model = `m-${crypto.randomUUID()}`;
  // 20 per 2 s: burst 2, refill 18 per 2 s.
  const admitted: number[] = [];
  const started = Date.now();
  while (Date.now() - started < 4_500) {
    const [row] = await db.query<{ allowed: boolean; retry_after_seconds: number }>(
      "select * from darkroom.take_provider_tokens('openai', $1, 0, 20, 1000000, 2, 0.1)",
      [model],
    );
    if (row.allowed) admitted.push(Date.now());
    else assert.ok(row.retry_after_seconds > 0);
    await new Promise((r) => setTimeout(r, 5));
  }
  for (const at of admitted) {
    const inWindow = admitted.filter((x) => x >= at && x < at + 2_000).length;
    assert.ok(inWindow <= 20, `${inWindow} admitted in the 2 s from ${at - started} ms`);
  }
  assert.ok(admitted.length >= 30, `admitted ${admitted.length} in 4.5 s`);
});

test("a row of provider_limits wins over the settings, and a drain blocks until Retry-After", async (db) => {
  const model = `m-${crypto.randomUUID()}`;
  await db.query(
    "insert into darkroom.provider_limits (provider, model, requests_per_window) values ('openai', $1, 2)",
    [model],
  );
  const take = async () =>
    (await db.query<{ allowed: boolean; retry_after_seconds: number }>(
      "select * from darkroom.take_provider_tokens('openai', $1, 0, 1000, 1000000, 60, 0.1)",
      [model],
    ))[0];
  assert.equal((await take()).allowed, true);
  const second = await take();
  assert.equal(second.allowed, false, "capacity 1 of a limit of 2");
  assert.ok(second.retry_after_seconds > 29, `waits ${second.retry_after_seconds} s`);

  const other = `m-${crypto.randomUUID()}`;
  await db.query(
    "select * from darkroom.take_provider_tokens('openai', $1, 0, 1000, 1000000, 60, 0.1)",
    [other],
  );
  await db.query("select darkroom.drain_provider_buckets('openai', $1, 30)", [other]);
  const [after] = await db.query<{ allowed: boolean; retry_after_seconds: number }>(
    "select * from darkroom.take_provider_tokens('openai', $1, 0, 1000, 1000000, 60, 0.1)",
    [other],
  );
  assert.equal(after.allowed, false);
  assert.ok(after.retry_after_seconds >= 29, `blocked ${after.retry_after_seconds} s`);
});

test("admit_analysis() reuses a completed analysis per owner, and one call per key in flight", async (db) => {
  const sha = hex();
  const key = { sha256: sha, provider: "openai", model: "m", promptVersion: "v1" };
  const owner = crypto.randomUUID();
  const first = await taskAtAi(db, sha, owner);
  const second = await taskAtAi(db, sha, owner);
  const stranger = await taskAtAi(db, sha, crypto.randomUUID());

  assert.equal((await admitAnalysis(db, first, key, false, SETTINGS)).action, "call");
  const waiting = await admitAnalysis(db, second, key, false, SETTINGS);
  assert.equal(waiting.action, "wait");
  assert.equal(waiting.action === "wait" && waiting.reason, "reuse");
  const forced = await admitAnalysis(db, second, key, true, SETTINGS);
  assert.equal(forced.action, "call", "reanalyze skips the claim");

  assert.equal(
    await complete(db, first, { analysis: ANALYSIS, promptVersion: "v1", estimatedTokens: 100 }),
    "completed",
  );
  const reused = await admitAnalysis(db, second, key, false, SETTINGS);
  assert.equal(reused.action, "reuse");
  assert.equal(
    (await admitAnalysis(db, stranger, key, false, SETTINGS)).action,
    "call",
    "another owner's analysis is not reused by default",
  );
  assert.equal(
    (await admitAnalysis(db, stranger, key, false, { ...SETTINGS, crossTenant: true })).action,
    "reuse",
    "unless reuse crosses owners",
  );

  if (reused.action !== "reuse") throw new Error("unreachable");
  await complete(db, second, { analysis: reused.analysis, reusedFrom: reused.analysisId });
  const [event] = (await listTaskEvents(db, second)).filter((e) =>
    e.eventType === "image.analyzed"
  );
  assert.equal(event.payload.reused, true);
  assert.equal(event.payload.sourceAnalysisId, reused.analysisId);
  assert.equal(event.payload.costUsd, 0);
  assert.deepEqual(event.payload.usage, { promptTokens: 0, completionTokens: 0, totalTokens: 0 });
});

test("admit_analysis() waits for the budget, counting reservations, until the cap is raised", async (db) => {
  const owner = crypto.randomUUID();
  const settings = { ...SETTINGS, ownerDailyTokens: 200 };
  const key = (sha: string) => ({
    sha256: sha,
    provider: "openai",
    model: "m",
    promptVersion: "v1",
  });
  const a = await taskAtAi(db, hex(), owner);
  const b = await taskAtAi(db, hex(), owner);
  const c = await taskAtAi(db, hex(), owner);
  const [sa, sb, sc] = await Promise.all(
    [a, b, c].map(async (id) =>
      (await db.query<{ sha256: string }>("select sha256 from public.images where task_id = $1", [
        id,
      ]))[0].sha256
    ),
  );
  assert.equal((await admitAnalysis(db, a, key(sa), false, settings)).action, "call");
  assert.equal((await admitAnalysis(db, b, key(sb), false, settings)).action, "call");
  const third = await admitAnalysis(db, c, key(sc), false, settings);
  assert.equal(third.action === "wait" && third.reason, "budget", "reservations count");
  await db.query(
    "insert into darkroom.ai_budgets (scope, daily_tokens) values ($1, 300)",
    [owner],
  );
  assert.equal((await admitAnalysis(db, c, key(sc), false, settings)).action, "call");
});

test("service_role may admit, take and drain; authenticated may not", async (db) => {
  const model = `m-${crypto.randomUUID()}`;
  const taskId = await taskAtAi(db, hex());
  const key = { sha256: hex(), provider: "openai", model, promptVersion: "v1" };
  const asService = await asRole(db, "service_role", {}, async (tx) => {
    await tx.query("select darkroom.drain_provider_buckets('openai', $1, 1)", [model]);
    return (await admitAnalysis(tx, taskId, key, false, SETTINGS)).action;
  });
  assert.ok(typeof asService === "string", `service_role: ${asService}`);
  const asUser = await asRole(
    db,
    "authenticated",
    { sub: crypto.randomUUID() },
    (tx) =>
      tx.query("select * from darkroom.take_provider_tokens('openai', $1, 0, 1, 1, 1, 0.1)", [
        model,
      ]),
  );
  assert.ok(asUser instanceof Error, "authenticated cannot take provider tokens");
  assert.match(String((asUser as Error).message), /permission denied/);
});
