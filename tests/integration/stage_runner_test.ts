// The stage runner and the worker handler, on a real database (PGlite, or PostgreSQL when
// DATABASE_URL is set), driven by small stages written here: each stage's run() returns a result
// or throws a StageError, as the real stages do. One database for the file; each test empties
// the stage queues first and creates its own tasks.
import assert from "node:assert/strict";
import { ENGINE, openTestDb, purgeStageQueues, recordingDb, type TestDb } from "../_helpers/db.ts";
import { bootstrapDatabase } from "../../local/bootstrap.ts";
import { PGliteDb } from "../../local/pglite_db.ts";
import { JwtVerifier, signJwt } from "../../shared/auth.ts";
import { DEV_JWT_SECRET } from "../../shared/config.ts";
import { type Db, PostgresDb, type Queryable } from "../../shared/db.ts";
import { StageError } from "../../shared/errors.ts";
import { silentLogger } from "../../shared/log.ts";
import { Queue } from "../../shared/queue.ts";
import {
  type BatchSummary,
  runStageBatch,
  type StageDefinition,
  type StageJob,
} from "../../shared/stage_runner.ts";
import type { StageResults } from "../../shared/stages.ts";
import { createTask, getTask, listTaskEvents } from "../../shared/tasks.ts";
import { createWorkerHandler } from "../../shared/workers/handler.ts";

let t: TestDb | undefined;

Deno.test.beforeAll(async () => {
  t = await openTestDb();
});

Deno.test.afterAll(async () => {
  await t?.close();
});

/**
 * A test on the file's database, its stage queues emptied first. Leak checks stay on for PGlite;
 * on PostgreSQL, postgres.js keeps its pool (sockets, idle timers) open across the tests of a file.
 */
function test(
  name: string,
  fn: (db: Db) => Promise<void>,
  leakChecks = ENGINE === "pglite",
): void {
  Deno.test({
    name,
    sanitizeOps: leakChecks,
    sanitizeResources: leakChecks,
    async fn() {
      await purgeStageQueues(t!.db);
      await fn(t!.db);
    },
  });
}

const DOWNLOADED: StageResults["download"] = {
  sha256: "a".repeat(64),
  contentType: "image/jpeg",
  byteSize: 10,
  storagePath: "sha256/a",
};

/** A download stage whose work is `run`; every job it is handed is kept in `jobs`. */
function downloadStage(
  run: (job: StageJob) => Promise<StageResults["download"]> = () => Promise.resolve(DOWNLOADED),
): StageDefinition<"download"> & { jobs: StageJob[] } {
  const jobs: StageJob[] = [];
  return {
    stage: "download",
    source: "download-worker",
    visibilityTimeoutSeconds: 30,
    timeoutMs: 5_000,
    jobs,
    run(job) {
      jobs.push(job);
      return run(job);
    },
  };
}

const deps = (db: Db, maxAttempts = 3) => ({ db, log: silentLogger, maxAttempts });

const EMPTY: Omit<BatchSummary, "worker" | "queue" | "durationMs" | "more"> = {
  read: 0,
  advanced: 0,
  completed: 0,
  retried: 0,
  failed: 0,
  ignored: 0,
  errors: 0,
  released: 0,
  deferred: 0,
};

/** The summary's counts, without the timing. */
function counts(s: BatchSummary) {
  const { worker: _w, queue: _q, durationMs: _d, more: _m, ...rest } = s;
  return rest;
}

/** The messages of a queue, visible or not, with their visibility. */
async function messagesIn(db: Queryable, queue: string) {
  return await db.query<{ msg_id: number; read_ct: number; hidden: boolean; task_id: string }>(
    `select msg_id, read_ct, vt > now() as hidden, message ->> 'taskId' as task_id
       from pgmq.q_${queue} order by msg_id`,
  );
}

async function makeVisible(db: Queryable, queue: string): Promise<void> {
  await db.query(`update pgmq.q_${queue} set vt = now()`);
}

async function eventTypes(db: Queryable, taskId: string): Promise<string[]> {
  return (await listTaskEvents(db, taskId)).map((e) => e.eventType);
}

test("runStageBatch() advances every task of the batch to the next stage", async (db) => {
  const tasks = await Promise.all(
    [1, 2, 3].map((i) => createTask(db, { imageUrl: `http://example.com/${i}.jpg` })),
  );
  const stage = downloadStage();
  const summary = await runStageBatch(deps(db), stage);
  assert.equal(summary.worker, "download-worker");
  assert.equal(summary.queue, "image_download");
  assert.deepEqual(counts(summary), { ...EMPTY, read: 3, advanced: 3 });
  assert.equal(summary.more, false, "3 of a batch of 8: the queue had no more");

  const ids = tasks.map((c) => c.taskId).sort();
  assert.deepEqual(stage.jobs.map((j) => j.taskId).sort(), ids, "run() got each task once");
  for (const job of stage.jobs) {
    const created = tasks.find((c) => c.taskId === job.taskId)!;
    assert.equal(job.traceId, created.traceId);
    assert.equal(job.attempt, 1);
    assert.equal(job.task.id, job.taskId);
    assert.equal(job.image, null, "no image before the download stage");
  }
  for (const { taskId } of tasks) {
    const task = await getTask(db, taskId);
    assert.equal(task?.status, "processing");
    assert.equal(task?.stage, "metadata");
    assert.equal(task?.image?.sha256, DOWNLOADED.sha256);
    assert.deepEqual(await eventTypes(db, taskId), ["task.created", "image.downloaded"]);
  }
  assert.deepEqual(await messagesIn(db, "image_download"), []);
  assert.deepEqual((await messagesIn(db, "metadata_processing")).map((m) => m.task_id).sort(), ids);
});

test("runStageBatch() says more may be waiting after a full batch, and not after a short one", async (db) => {
  for (const i of [1, 2, 3]) await createTask(db, { imageUrl: `http://example.com/more-${i}.jpg` });
  const stage = { ...downloadStage(), batchSize: 2 };
  const first = await runStageBatch(deps(db), stage);
  assert.equal(first.read, 2);
  assert.equal(first.more, true);
  const second = await runStageBatch(deps(db), stage);
  assert.equal(second.read, 1);
  assert.equal(second.more, false);
});

test("runStageBatch() reports completed for a task at its last stage", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/last.jpg" });
  const run = async <S extends "download" | "metadata" | "ai">(
    def: Omit<StageDefinition<S>, "source">,
  ) => await runStageBatch(deps(db), { ...def, source: `${def.stage}-worker` });
  await run({ stage: "download", run: () => Promise.resolve(DOWNLOADED) });
  await run({
    stage: "metadata",
    run: (job) => {
      assert.equal(job.image?.sha256, DOWNLOADED.sha256, "the image row is handed over");
      return Promise.resolve({
        width: 4,
        height: 3,
        format: "jpeg",
        metadata: {
          make: null,
          model: null,
          takenAt: null,
          orientation: null,
          gps: null,
          exif: {},
          partial: false,
        },
        thumbnail: null,
      });
    },
  });
  const summary = await run({
    stage: "ai",
    run: () =>
      Promise.resolve({
        analysis: {
          provider: "local",
          model: "test",
          caption: "A test image",
          tags: ["a", "b", "c"],
          safety: { adult: false, violence: false, selfHarm: false },
          usage: null,
        },
      }),
  });
  assert.deepEqual(counts(summary), { ...EMPTY, read: 1, completed: 1 });
  assert.equal((await getTask(db, created.taskId))?.status, "completed");
});

test("runStageBatch() schedules a retry for a retryable StageError and counts the attempt", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/503.jpg" });
  const stage = downloadStage(() =>
    Promise.reject(new StageError("http_status", "status 503", true))
  );
  const summary = await runStageBatch(deps(db, 3), stage);
  assert.deepEqual(counts(summary), { ...EMPTY, read: 1, retried: 1 });
  const task = await getTask(db, created.taskId);
  assert.equal(task?.status, "processing");
  assert.equal(task?.stage, "download");
  assert.equal(task?.attempts.download, 1);
  assert.deepEqual(await eventTypes(db, created.taskId), ["task.created", "task.retry_scheduled"]);
  const [m, ...more] = await messagesIn(db, "image_download");
  assert.deepEqual(more, []);
  assert.equal(m.task_id, created.taskId);
  assert.equal(m.hidden, true, "the message waits for its backoff");
});

test("runStageBatch() fails the task on its last attempt", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/503.jpg" });
  const stage = downloadStage(() =>
    Promise.reject(new StageError("http_status", "status 503", true))
  );
  const first = await runStageBatch(deps(db, 2), stage);
  assert.deepEqual(counts(first), { ...EMPTY, read: 1, retried: 1 });
  await makeVisible(db, "image_download");
  const last = await runStageBatch(deps(db, 2), stage);
  assert.deepEqual(counts(last), { ...EMPTY, read: 1, failed: 1 });
  assert.deepEqual(stage.jobs.map((j) => j.attempt), [1, 2]);
  const task = await getTask(db, created.taskId);
  assert.equal(task?.status, "failed");
  assert.deepEqual(task?.error, { code: "http_status", message: "status 503", stage: "download" });
  assert.equal(task?.attempts.download, 2);
  assert.equal((await listTaskEvents(db, created.taskId)).at(-1)?.eventType, "task.failed");
  assert.deepEqual(await messagesIn(db, "image_download"), [], "the message is archived");
});

test("runStageBatch() fails the task at once on a permanent StageError", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/404.jpg" });
  const stage = downloadStage(() => Promise.reject(new StageError("http_status", "status 404")));
  const summary = await runStageBatch(deps(db, 3), stage);
  assert.deepEqual(counts(summary), { ...EMPTY, read: 1, failed: 1 });
  const task = await getTask(db, created.taskId);
  assert.equal(task?.status, "failed");
  assert.equal(task?.attempts.download, 1);
});

test("runStageBatch() archives a message without taskId and counts it as ignored", async (db) => {
  const msgId = await new Queue(db, "image_download").send({ hello: "world" });
  const stage = downloadStage();
  const summary = await runStageBatch(deps(db), stage);
  assert.deepEqual(counts(summary), { ...EMPTY, read: 1, ignored: 1 });
  assert.deepEqual(stage.jobs, [], "run() is not called");
  assert.deepEqual(await messagesIn(db, "image_download"), []);
  const archived = await db.query("select 1 from pgmq.a_image_download where msg_id = $1::bigint", [
    msgId,
  ]);
  assert.equal(archived.length, 1);
});

test("runStageBatch() archives a message whose taskId is no UUID, and still runs the others", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/with-a-bad-neighbour.jpg" });
  const bad = await new Queue(db, "image_download").send({ taskId: "not-a-uuid" });
  const stage = downloadStage();
  const summary = await runStageBatch(deps(db), stage);
  assert.deepEqual(counts(summary), { ...EMPTY, read: 2, ignored: 1, advanced: 1 });
  assert.deepEqual(stage.jobs.map((j) => j.taskId), [created.taskId]);
  const archived = await db.query("select 1 from pgmq.a_image_download where msg_id = $1::bigint", [
    bad,
  ]);
  assert.equal(archived.length, 1);
});

test("runStageBatch() retries, as internal, a result complete_stage refuses, and writes none of it", async (db) => {
  // sha256 must be 64 hex digits (images.sha256_is_hex): the recorder's insert raises, and
  // complete_stage's transaction rolls back whole.
  const created = await createTask(db, { imageUrl: "http://example.com/bad-result.jpg" });
  const stage = downloadStage(() => Promise.resolve({ ...DOWNLOADED, sha256: "not-hex" }));
  const summary = await runStageBatch(deps(db, 3), stage);
  assert.deepEqual(counts(summary), { ...EMPTY, read: 1, retried: 1 });
  const task = await getTask(db, created.taskId);
  assert.equal(task?.stage, "download", "the task did not advance");
  assert.equal(task?.image, null, "no image row");
  assert.deepEqual(await eventTypes(db, created.taskId), ["task.created", "task.retry_scheduled"]);
  const retry = (await listTaskEvents(db, created.taskId)).at(-1);
  assert.equal(retry?.payload.code, "internal");
  assert.deepEqual(await messagesIn(db, "metadata_processing"), [], "no next-stage message");
  assert.equal((await messagesIn(db, "image_download")).length, 1, "the message stays");
});

/** A download stage whose jobs all finish together, once `n` of them have started. */
function togetherStage(n: number, result: (job: StageJob) => StageResults["download"]) {
  let started = 0;
  let release!: () => void;
  const all = new Promise<void>((r) => release = r);
  return downloadStage(async (job) => {
    if (++started === n) release();
    await all;
    return result(job);
  });
}

test("runStageBatch() commits the successes that finish together in one complete_stages call", async (db) => {
  const tasks = await Promise.all(
    [1, 2, 3, 4].map((i) => createTask(db, { imageUrl: `http://example.com/group-${i}.jpg` })),
  );
  const spy = recordingDb(db);
  const stage = { ...togetherStage(4, () => DOWNLOADED), concurrency: 4 };
  const summary = await runStageBatch(deps(spy.db), stage);
  assert.deepEqual(counts(summary), { ...EMPTY, read: 4, advanced: 4 });
  const commits = spy.seen.filter((sql) => /darkroom\.complete_stages?\(/.test(sql));
  assert.ok(commits.some((sql) => sql.includes("complete_stages(")), "a group commit ran");
  assert.ok(commits.length <= 2, `${commits.length} commit statements for 4 messages`);
  for (const { taskId } of tasks) {
    assert.equal((await getTask(db, taskId))?.stage, "metadata");
    assert.deepEqual(await eventTypes(db, taskId), ["task.created", "image.downloaded"]);
  }
  assert.deepEqual(await messagesIn(db, "image_download"), []);
  assert.equal((await messagesIn(db, "metadata_processing")).length, 4);
});

test("runStageBatch() commits a group one by one when one result is refused: only that one retries", async (db) => {
  const tasks = await Promise.all(
    [1, 2, 3, 4].map((i) => createTask(db, { imageUrl: `http://example.com/mixed-${i}.jpg` })),
  );
  const bad = tasks[2].taskId;
  const stage = {
    ...togetherStage(
      4,
      (job) => job.taskId === bad ? { ...DOWNLOADED, sha256: "not-hex" } : DOWNLOADED,
    ),
    concurrency: 4,
  };
  const summary = await runStageBatch(deps(db), stage);
  assert.deepEqual(counts(summary), { ...EMPTY, read: 4, advanced: 3, retried: 1 });
  for (const { taskId } of tasks) {
    const task = await getTask(db, taskId);
    if (taskId === bad) {
      assert.equal(task?.stage, "download");
      assert.equal(task?.image, null);
      assert.deepEqual(await eventTypes(db, taskId), ["task.created", "task.retry_scheduled"]);
    } else {
      assert.equal(task?.stage, "metadata");
      assert.deepEqual(await eventTypes(db, taskId), ["task.created", "image.downloaded"]);
    }
  }
  assert.deepEqual((await messagesIn(db, "image_download")).map((m) => m.task_id), [bad]);
  assert.equal((await messagesIn(db, "metadata_processing")).length, 3);
});

test("darkroom.complete_stages() refuses items that are not a JSON array, naming p_items", async (db) => {
  await assert.rejects(
    db.query("select * from darkroom.complete_stages('download', '{}'::jsonb, 'download-worker')"),
    /p_items must be a JSON array/,
  );
});

// ---- the worker handler -------------------------------------------------------------------

const verifier = new JwtVerifier({ secret: DEV_JWT_SECRET });
const handlerFor = (db: Db) => createWorkerHandler({ ...deps(db), verifier }, downloadStage());
const tokenOf = (role: "anon" | "authenticated" | "service_role") =>
  signJwt(
    role === "authenticated" ? { role, sub: crypto.randomUUID() } : { role },
    DEV_JWT_SECRET,
  );
const WORKER_URL = "http://localhost/functions/v1/download-worker";

async function errorOf(res: Response): Promise<[number, string]> {
  const body = await res.json();
  return [res.status, body.error.code];
}

test("createWorkerHandler() answers 401 without a token and runs nothing", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/h401.jpg" });
  const res = await handlerFor(db)(new Request(WORKER_URL, { method: "POST" }));
  assert.deepEqual(await errorOf(res), [401, "unauthorized"]);
  assert.equal((await getTask(db, created.taskId))?.status, "queued");
});

test("createWorkerHandler() answers 403 to anon and authenticated callers", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/h403.jpg" });
  for (const role of ["anon", "authenticated"] as const) {
    const res = await handlerFor(db)(
      new Request(WORKER_URL, {
        method: "POST",
        headers: { authorization: `Bearer ${await tokenOf(role)}` },
      }),
    );
    assert.deepEqual(await errorOf(res), [403, "forbidden"], role);
  }
  assert.equal((await getTask(db, created.taskId))?.status, "queued");
});

test("createWorkerHandler() answers 405 to service_role with another method than POST or GET", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/h405.jpg" });
  for (const method of ["PUT", "DELETE", "PATCH"]) {
    const res = await handlerFor(db)(
      new Request(WORKER_URL, {
        method,
        headers: { authorization: `Bearer ${await tokenOf("service_role")}` },
      }),
    );
    assert.deepEqual(await errorOf(res), [405, "method_not_allowed"], method);
  }
  assert.equal((await getTask(db, created.taskId))?.status, "queued");
});

test("createWorkerHandler() runs one batch for service_role and answers its summary", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/h200.jpg" });
  const res = await handlerFor(db)(
    new Request(WORKER_URL, {
      method: "POST",
      headers: { authorization: `Bearer ${await tokenOf("service_role")}` },
      body: "{}",
    }),
  );
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  const summary = await res.json() as BatchSummary;
  assert.equal(summary.worker, "download-worker");
  assert.equal(summary.queue, "image_download");
  assert.equal(typeof summary.durationMs, "number");
  assert.deepEqual(counts(summary), { ...EMPTY, read: 1, advanced: 1 });
  assert.equal((await getTask(db, created.taskId))?.stage, "metadata");
});

// ---- losing the database mid-batch -------------------------------------------------------

/**
 * A database the runner can lose mid-batch, and a way to look at it afterwards: on PostgreSQL a
 * second pool on the file's database; on PGlite a database on disk of its own, opened again.
 */
async function losableDb(): Promise<{
  runner: Db;
  setup: Db;
  afterwards(): Promise<Db>;
  cleanup(): Promise<void>;
}> {
  if (ENGINE === "postgres") {
    const runner = new PostgresDb(t!.url!);
    return {
      runner,
      setup: t!.db,
      afterwards: () => Promise.resolve(t!.db),
      cleanup: () => runner.close(),
    };
  }
  const dir = await Deno.makeTempDir({ prefix: "darkroom-runner-" });
  const runner = await PGliteDb.open(dir);
  await bootstrapDatabase(runner);
  let reopened: Db | undefined;
  return {
    runner,
    setup: runner,
    afterwards: async () => reopened = await PGliteDb.open(dir),
    cleanup: async () => {
      await runner.close();
      await reopened?.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

test(
  "runStageBatch() counts an outcome it cannot record in errors and leaves the message for redelivery",
  async () => {
    const lost = await losableDb();
    try {
      await purgeStageQueues(lost.setup);
      const created = await createTask(lost.setup, { imageUrl: "http://example.com/lost.jpg" });
      // The connection goes away while the stage works: neither complete_stage nor the fallback
      // transition can run.
      const stage = downloadStage(async () => {
        await lost.runner.close();
        return DOWNLOADED;
      });
      const summary = await runStageBatch(deps(lost.runner, 3), stage);
      assert.deepEqual(counts(summary), { ...EMPTY, read: 1, errors: 1 });

      const db = await lost.afterwards();
      const task = await getTask(db, created.taskId);
      assert.equal(task?.status, "processing");
      assert.equal(task?.stage, "download");
      assert.equal(task?.image, null, "nothing of the result is written");
      assert.equal(task?.attempts.download, 1, "the claim counted the try");
      assert.deepEqual(await eventTypes(db, created.taskId), ["task.created"]);
      const [m, ...more] = await messagesIn(db, "image_download");
      assert.deepEqual(more, []);
      assert.equal(m.task_id, created.taskId, "the message stays");
      assert.equal(m.hidden, true, "until its visibility timeout");

      // Once visible again it is delivered again, as the task's second try.
      await makeVisible(db, "image_download");
      const again = downloadStage();
      assert.deepEqual(counts(await runStageBatch(deps(db, 3), again)), {
        ...EMPTY,
        read: 1,
        advanced: 1,
      });
      assert.deepEqual(again.jobs.map((j) => j.attempt), [2]);
    } finally {
      await lost.cleanup();
    }
    // No leak checks: on PGlite a second database is bootstrapped here (seconds), while the file
    // database's idle-statistics timer (Postgres's setitimer, run by PGlite) fires.
  },
  false,
);
