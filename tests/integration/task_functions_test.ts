// The SQL functions that own task state, on the engine of this run (PGlite, or PostgreSQL
// when DATABASE_URL is set): every transition, its guard against duplicate and late delivery,
// and the events it publishes. One database for the file; each test empties the stage queues
// first and creates its own tasks, so no test depends on another or on their order.
import assert from "node:assert/strict";
import { ENGINE, openTestDb, purgeStageQueues, type TestDb } from "../_helpers/db.ts";
import { Queue } from "../../shared/queue.ts";
import { createTask, getTask, listTaskEvents } from "../../shared/tasks.ts";
import { validateEvent } from "../../shared/events.ts";
import type { Db, Queryable } from "../../shared/db.ts";

const SHA = "a".repeat(64);

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
function test(name: string, fn: (db: Db) => Promise<void>): void {
  Deno.test({
    name,
    sanitizeOps: ENGINE === "pglite",
    sanitizeResources: ENGINE === "pglite",
    async fn() {
      await purgeStageQueues(t!.db);
      await fn(t!.db);
    },
  });
}

interface Claim {
  msg_id: number;
  task_id: string;
  proceed: boolean;
  attempt: number;
}

/** Reads the visible messages of a stage's queue and claims them with begin_stage. */
async function claim(db: Queryable, stage: string, queue: string, maxAttempts = 5) {
  const msgs = await new Queue<{ taskId: string }>(db, queue).read(30, 10);
  return await db.query<Claim>(
    `select * from darkroom.begin_stage(p_stage => $1, p_msg_ids => $2::bigint[], p_task_ids => $3::uuid[],
       p_max_attempts => $4::integer)`,
    [stage, msgs.map((m) => m.msgId), msgs.map((m) => m.message.taskId), maxAttempts],
  );
}

async function complete(
  db: Queryable,
  taskId: string,
  stage: string,
  msgId: number,
  result: unknown,
) {
  const [r] = await db.query<{ r: string }>(
    "select darkroom.complete_stage($1::uuid, $2, $3::bigint, $4::jsonb, $5) as r",
    [taskId, stage, msgId, JSON.stringify(result), `${stage}-worker`],
  );
  return r.r;
}

const DOWNLOAD = { sha256: SHA, contentType: "image/jpeg", byteSize: 10, storagePath: "x" };
const METADATA = {
  width: 640,
  height: 480,
  format: "jpeg",
  metadata: {
    make: "NIKON",
    model: "COOLPIX P6000",
    takenAt: "2008-10-22T16:38:20",
    orientation: 1,
    gps: { lat: 43.46, lon: 11.88 },
    exif: {},
    partial: false,
  },
};
const ANALYSIS = {
  analysis: {
    provider: "local",
    model: "m",
    caption: "A photo",
    tags: ["a", "b", "c"],
    safety: { adult: false, violence: false, selfHarm: false },
    usage: null,
  },
};

/** Claims and completes each stage of the one task in the queues; returns the claims. */
async function runToCompletion(db: Queryable, taskId: string) {
  const [d] = await claim(db, "download", "image_download");
  assert.equal(d.task_id, taskId);
  assert.equal(await complete(db, taskId, "download", d.msg_id, DOWNLOAD), "advanced");
  const [m] = await claim(db, "metadata", "metadata_processing");
  assert.equal(m.task_id, taskId);
  assert.equal(await complete(db, taskId, "metadata", m.msg_id, METADATA), "advanced");
  const [a] = await claim(db, "ai", "ai_processing");
  assert.equal(a.task_id, taskId);
  assert.equal(await complete(db, taskId, "ai", a.msg_id, ANALYSIS), "completed");
  return { d, m, a };
}

/** A task whose download failed with http_status 404; returns it and the failed message. */
async function failedAtDownload(db: Queryable) {
  const created = await createTask(db, { imageUrl: "http://example.com/404.jpg" });
  const [d] = await claim(db, "download", "image_download");
  assert.equal(d.task_id, created.taskId);
  const [r] = await db.query<{ r: string }>(
    "select darkroom.fail_stage($1::uuid, 'download', $2::bigint, 'http_status', 'Cannot download image: status 404', 'download-worker') as r",
    [created.taskId, d.msg_id],
  );
  assert.equal(r.r, "failed");
  return { created, msgId: d.msg_id };
}

async function queueLength(db: Queryable, queue: string): Promise<number> {
  return (await new Queue(db, queue).metrics()).length;
}

test("completeStage() moves a task through every stage with one event each, in order", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/a.jpg" });
  assert.equal(created.status, "queued");
  await runToCompletion(db, created.taskId);
  const task = await getTask(db, created.taskId);
  assert.ok(task);
  assert.equal(task.status, "completed");
  assert.equal(task.stage, null);
  assert.deepEqual(task.attempts, { download: 1, metadata: 1, ai: 1 });
  assert.equal(task.image?.width, 640);
  assert.equal(task.image?.metadata?.make, "NIKON");
  assert.deepEqual(task.image?.analysis?.tags, ["a", "b", "c"]);
  assert.ok(task.completedAt);
  const events = await listTaskEvents(db, created.taskId);
  assert.deepEqual(events.map((e) => e.eventType), [
    "task.created",
    "image.downloaded",
    "image.metadata_extracted",
    "image.analyzed",
    "task.completed",
  ]);
  for (const e of events) {
    assert.deepEqual(validateEvent(e), [], `${e.eventType} is a valid INEvent`);
    assert.equal(e.traceId, created.traceId);
  }
  for (const q of ["image_download", "metadata_processing", "ai_processing"]) {
    assert.equal(await queueLength(db, q), 0, `${q} is empty`);
  }
});

test("completeStage() ignores a duplicate delivery", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/b.jpg" });
  const { d } = await runToCompletion(db, created.taskId);
  const before = await listTaskEvents(db, created.taskId);
  // The same message handled again (a worker that lost its visibility timeout).
  const r = await complete(db, created.taskId, "download", d.msg_id, {
    sha256: "b".repeat(64),
    contentType: "image/png",
    byteSize: 99,
    storagePath: "y",
  });
  assert.equal(r, "ignored");
  assert.deepEqual(await listTaskEvents(db, created.taskId), before);
  assert.equal((await getTask(db, created.taskId))?.image?.sha256, SHA);
  assert.equal(await queueLength(db, "metadata_processing"), 0);
});

test("beginStage() drops a message for a task past that stage", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/c.jpg" });
  await runToCompletion(db, created.taskId);
  // A late duplicate of the download message arrives.
  await new Queue(db, "image_download").send({ taskId: created.taskId, traceId: created.traceId });
  const rows = await claim(db, "download", "image_download");
  assert.equal(rows.length, 1);
  assert.equal(rows[0].proceed, false);
  assert.equal(await queueLength(db, "image_download"), 0);
  assert.equal((await getTask(db, created.taskId))?.attempts.download, 1);
});

test("createTask() with an Idempotency-Key returns the first task again, with one message", async (db) => {
  const owner = crypto.randomUUID();
  const a = await createTask(
    db,
    { imageUrl: "http://example.com/d.jpg", idempotencyKey: "k1" },
    owner,
  );
  const b = await createTask(
    db,
    { imageUrl: "http://example.com/d.jpg", idempotencyKey: "k1" },
    owner,
  );
  assert.equal(a.created, true);
  assert.equal(b.created, false);
  assert.equal(b.taskId, a.taskId);
  const rows = await claim(db, "download", "image_download");
  assert.deepEqual(rows.map((r) => r.task_id), [a.taskId], "one message for the one task");
});

test("createTask() refuses an Idempotency-Key reused with another request (DR422)", async (db) => {
  const owner = crypto.randomUUID();
  await createTask(db, { imageUrl: "http://example.com/d.jpg", idempotencyKey: "k3" }, owner);
  await assert.rejects(
    createTask(db, { imageUrl: "http://example.com/other.jpg", idempotencyKey: "k3" }, owner),
    (err: { code?: string }) => err.code === "DR422",
  );
});

test("createTask() scopes an Idempotency-Key to its owner", async (db) => {
  const first = await createTask(
    db,
    { imageUrl: "http://example.com/d.jpg", idempotencyKey: "k2" },
    crypto.randomUUID(),
  );
  const other = await createTask(
    db,
    { imageUrl: "http://example.com/d.jpg", idempotencyKey: "k2" },
    crypto.randomUUID(),
  );
  assert.equal(other.created, true);
  assert.notEqual(other.taskId, first.taskId);
  const rows = await claim(db, "download", "image_download");
  assert.deepEqual(
    rows.map((r) => r.task_id).sort(),
    [first.taskId, other.taskId].sort(),
    "one message per created task",
  );
});

test("failStage() ends the task with its error, publishes task.failed and archives the message", async (db) => {
  const { created, msgId } = await failedAtDownload(db);
  const task = await getTask(db, created.taskId);
  assert.equal(task?.status, "failed");
  assert.deepEqual(task?.error, {
    code: "http_status",
    message: "Cannot download image: status 404",
    stage: "download",
  });
  const archived = await db.query(
    "select msg_id from pgmq.a_image_download where msg_id = $1::bigint",
    [msgId],
  );
  assert.equal(archived.length, 1);
  assert.equal(await queueLength(db, "image_download"), 0);
  const failed = (await listTaskEvents(db, created.taskId)).at(-1);
  assert.ok(failed);
  assert.equal(failed.eventType, "task.failed");
  assert.deepEqual(validateEvent(failed), []);
  assert.equal(failed.payload.code, "http_status");
});

test("retryTask() re-queues a failed task from the failed stage with a fresh budget of tries", async (db) => {
  const { created } = await failedAtDownload(db);
  const [again] = await db.query<{ status: string; changed: boolean }>(
    "select * from darkroom.retry_task($1::uuid)",
    [created.taskId],
  );
  assert.deepEqual(again, { status: "queued", changed: true });
  const rows = await claim(db, "download", "image_download");
  assert.equal(rows.length, 1);
  assert.equal(rows[0].task_id, created.taskId);
  assert.equal(rows[0].proceed, true);
  assert.equal(rows[0].attempt, 1, "a manual retry gives the stage a fresh budget of tries");
  assert.equal((await getTask(db, created.taskId))?.attempts.download, 1);
});

test("scheduleRetry() hides the message for the delay and publishes task.retry_scheduled", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/503.jpg" });
  const [d] = await claim(db, "download", "image_download");
  const [r] = await db.query<{ r: string }>(
    "select darkroom.schedule_retry($1::uuid, 'download', $2::bigint, 60, 'http_status', 'status 503', 'download-worker') as r",
    [created.taskId, d.msg_id],
  );
  assert.equal(r.r, "retry_scheduled");
  assert.equal((await claim(db, "download", "image_download")).length, 0, "hidden for 60 s");
  const [vt] = await db.query<{ s: number }>(
    "select extract(epoch from vt - now())::integer as s from pgmq.q_image_download where msg_id = $1::bigint",
    [d.msg_id],
  );
  assert.ok(vt.s > 50 && vt.s <= 60, `vt is ${vt.s}s ahead`);
  const last = (await listTaskEvents(db, created.taskId)).at(-1);
  assert.equal(last?.eventType, "task.retry_scheduled");
  assert.deepEqual(validateEvent(last), []);
  assert.equal((await getTask(db, created.taskId))?.status, "processing");
});

test("beginStage() fails a task whose stage was begun MAX_ATTEMPTS times without an outcome", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/poison.jpg" });
  // A worker dies twice on the message: each claim counts a try, none records an outcome.
  for (const expected of [1, 2]) {
    const [c] = await claim(db, "download", "image_download", 2);
    assert.equal(c.proceed, true);
    assert.equal(c.attempt, expected);
    await db.query("select pgmq.set_vt('image_download', $1::bigint, 0)", [c.msg_id]);
  }
  const rows = await claim(db, "download", "image_download", 2);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].proceed, false);
  const task = await getTask(db, created.taskId);
  assert.equal(task?.status, "failed");
  assert.equal(task?.error?.code, "internal");
  assert.equal(task?.attempts.download, 2, "the count the API shows is the one that decided");
  assert.equal((await listTaskEvents(db, created.taskId)).at(-1)?.eventType, "task.failed");
});

test("cancelTask() stops a queued task and its message is then dropped", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/cancel.jpg" });
  const [c] = await db.query<{ status: string; changed: boolean }>(
    "select * from darkroom.cancel_task($1::uuid)",
    [created.taskId],
  );
  assert.deepEqual(c, { status: "cancelled", changed: true });
  const rows = await claim(db, "download", "image_download");
  assert.equal(rows.length, 1);
  assert.equal(rows[0].proceed, false);
  assert.equal(await queueLength(db, "image_download"), 0);
  const task = await getTask(db, created.taskId);
  assert.equal(task?.status, "cancelled");
  assert.equal(task?.error?.code, "cancelled");
  const types = (await listTaskEvents(db, created.taskId)).map((e) => e.eventType);
  assert.deepEqual(types, ["task.created", "task.cancelled"]);
});

test("cancelTask() of a cancelled task changes nothing", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/cancel2.jpg" });
  await db.query("select darkroom.cancel_task($1::uuid)", [created.taskId]);
  const before = await listTaskEvents(db, created.taskId);
  const [again] = await db.query<{ status: string; changed: boolean }>(
    "select * from darkroom.cancel_task($1::uuid)",
    [created.taskId],
  );
  assert.deepEqual(again, { status: "cancelled", changed: false });
  assert.deepEqual(await listTaskEvents(db, created.taskId), before);
});

test("beginStage() and completeStage() run as service_role, as a Supabase client calls them", async (db) => {
  const created = await createTask(db, { imageUrl: "http://example.com/svc.jpg" });
  await db.transaction(async (tx) => {
    await tx.query("set local role service_role");
    await runToCompletion(tx, created.taskId);
  });
  assert.equal((await getTask(db, created.taskId))?.status, "completed");
});
