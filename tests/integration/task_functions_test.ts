// The SQL functions that own task state, on the engine of this run (PGlite, or PostgreSQL
// when DATABASE_URL is set): every transition, its guard against duplicate and late delivery,
// and the events it publishes.
import assert from "node:assert/strict";
import { openTestDb, type TestDb } from "../_helpers/db.ts";
import { Queue } from "../../shared/queue.ts";
import { createTask, getTask, listTaskEvents } from "../../shared/tasks.ts";
import { validateEvent } from "../../shared/events.ts";
import type { Queryable } from "../../shared/db.ts";

const SHA = "a".repeat(64);

async function claim(db: Queryable, stage: string, queue: string, maxAttempts = 5) {
  const msgs = await new Queue<{ taskId: string }>(db, queue).read(30, 10);
  const rows = await db.query<
    {
      msg_id: number;
      task_id: string;
      proceed: boolean;
      attempt: number;
      task: { trace_id: string };
    }
  >(
    `select * from darkroom.begin_stage(p_stage => $1, p_msg_ids => $2::bigint[], p_task_ids => $3::uuid[],
       p_max_attempts => $4::integer)`,
    [stage, msgs.map((m) => m.msgId), msgs.map((m) => m.message.taskId), maxAttempts],
  );
  return rows;
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

async function runToCompletion(db: Queryable, taskId: string) {
  const [d] = await claim(db, "download", "image_download");
  assert.equal(d.task_id, taskId);
  assert.equal(
    await complete(db, taskId, "download", d.msg_id, {
      sha256: SHA,
      contentType: "image/jpeg",
      byteSize: 10,
      storagePath: "x",
    }),
    "advanced",
  );
  const [m] = await claim(db, "metadata", "metadata_processing");
  assert.equal(await complete(db, taskId, "metadata", m.msg_id, METADATA), "advanced");
  const [a] = await claim(db, "ai", "ai_processing");
  assert.equal(await complete(db, taskId, "ai", a.msg_id, ANALYSIS), "completed");
  return { d, m, a };
}

let t: TestDb;
Deno.test({
  name: "task functions",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(ctx) {
    t = await openTestDb();
    const db = t.db;
    try {
      await ctx.step(
        "completeStage() moves a task through every stage with one event each, in order",
        async () => {
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
            assert.equal((await new Queue(db, q).metrics()).length, 0, `${q} is empty`);
          }
        },
      );

      await ctx.step("completeStage() ignores a duplicate delivery", async () => {
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
        const after = await listTaskEvents(db, created.taskId);
        assert.equal(after.length, before.length);
        assert.equal((await getTask(db, created.taskId))?.image?.sha256, SHA);
        assert.equal((await new Queue(db, "metadata_processing").metrics()).length, 0);
      });

      await ctx.step("beginStage() drops a message for a task past that stage", async () => {
        const created = await createTask(db, { imageUrl: "http://example.com/c.jpg" });
        await runToCompletion(db, created.taskId);
        // A late duplicate of the download message arrives.
        await new Queue(db, "image_download").send({
          taskId: created.taskId,
          traceId: created.traceId,
        });
        const rows = await claim(db, "download", "image_download");
        assert.equal(rows.length, 1);
        assert.equal(rows[0].proceed, false);
        assert.equal((await new Queue(db, "image_download").metrics()).length, 0);
        assert.equal((await getTask(db, created.taskId))?.attempts.download, 1);
      });

      await ctx.step(
        "createTask() with an Idempotency-Key returns the first task again",
        async () => {
          const a = await createTask(db, {
            imageUrl: "http://example.com/d.jpg",
            idempotencyKey: "k1",
          });
          const b = await createTask(db, {
            imageUrl: "http://example.com/d.jpg",
            idempotencyKey: "k1",
          });
          assert.equal(b.taskId, a.taskId);
          assert.equal(b.created, false);
          assert.equal(a.created, true);
          const owned = await createTask(
            db,
            { imageUrl: "http://example.com/d.jpg", idempotencyKey: "k1" },
            crypto.randomUUID(),
          );
          assert.notEqual(owned.taskId, a.taskId, "keys are scoped to their owner");
          const rows = await claim(db, "download", "image_download");
          assert.equal(rows.length, 2, "one message per created task");
          for (const r of rows) {
            await complete(db, r.task_id, "download", r.msg_id, {
              sha256: SHA,
              contentType: "image/jpeg",
              byteSize: 1,
              storagePath: "z",
            });
          }
          await claim(db, "metadata", "metadata_processing").then((rs) =>
            Promise.all(
              rs.map((r) => db.query("select darkroom.cancel_task($1::uuid)", [r.task_id])),
            )
          );
          await claim(db, "metadata", "metadata_processing");
        },
      );

      await ctx.step(
        "failStage() ends the task with its error and archives the message",
        async () => {
          const created = await createTask(db, { imageUrl: "http://example.com/404.jpg" });
          const [d] = await claim(db, "download", "image_download");
          const [r] = await db.query<{ r: string }>(
            "select darkroom.fail_stage($1::uuid, 'download', $2::bigint, 'http_status', 'Cannot download image: status 404', 'download-worker') as r",
            [created.taskId, d.msg_id],
          );
          assert.equal(r.r, "failed");
          const task = await getTask(db, created.taskId);
          assert.equal(task?.status, "failed");
          assert.deepEqual(task?.error, {
            code: "http_status",
            message: "Cannot download image: status 404",
            stage: "download",
          });
          const archived = await db.query(
            "select msg_id from pgmq.a_image_download where msg_id = $1::bigint",
            [
              d.msg_id,
            ],
          );
          assert.equal(archived.length, 1);
          const events = await listTaskEvents(db, created.taskId);
          const failed = events.at(-1)!;
          assert.equal(failed.eventType, "task.failed");
          assert.deepEqual(validateEvent(failed), []);
          assert.equal(failed.payload.code, "http_status");

          // retry_task re-queues it from the failed stage.
          const [again] = await db.query<{ status: string; changed: boolean }>(
            "select * from darkroom.retry_task($1::uuid)",
            [created.taskId],
          );
          assert.deepEqual(again, { status: "queued", changed: true });
          const rows = await claim(db, "download", "image_download");
          assert.equal(rows.length, 1);
          assert.equal(rows[0].proceed, true);
          assert.equal(
            rows[0].attempt,
            1,
            "a manual retry gives the stage a fresh budget of tries",
          );
          assert.equal((await getTask(db, created.taskId))?.attempts.download, 1);
          await db.query("select darkroom.cancel_task($1::uuid)", [created.taskId]);
        },
      );

      await ctx.step(
        "scheduleRetry() hides the message for the delay and publishes task.retry_scheduled",
        async () => {
          const created = await createTask(db, { imageUrl: "http://example.com/503.jpg" });
          const [d] = await claim(db, "download", "image_download");
          const [r] = await db.query<{ r: string }>(
            "select darkroom.schedule_retry($1::uuid, 'download', $2::bigint, 60, 'http_status', 'status 503', 'download-worker') as r",
            [created.taskId, d.msg_id],
          );
          assert.equal(r.r, "retry_scheduled");
          assert.equal(
            (await claim(db, "download", "image_download")).length,
            0,
            "hidden for 60 s",
          );
          const [vt] = await db.query<{ s: number }>(
            "select extract(epoch from vt - now())::integer as s from pgmq.q_image_download where msg_id = $1::bigint",
            [d.msg_id],
          );
          assert.ok(vt.s > 50 && vt.s <= 60, `vt is ${vt.s}s ahead`);
          const events = await listTaskEvents(db, created.taskId);
          assert.equal(events.at(-1)?.eventType, "task.retry_scheduled");
          assert.deepEqual(validateEvent(events.at(-1)), []);
          assert.equal((await getTask(db, created.taskId))?.status, "processing");
          await db.query("select darkroom.cancel_task($1::uuid)", [created.taskId]);
        },
      );

      await ctx.step(
        "beginStage() fails a task whose stage was begun MAX_ATTEMPTS times without an outcome",
        async () => {
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
          assert.equal(
            task?.attempts.download,
            2,
            "the count the API shows is the one that decided",
          );
          assert.equal((await listTaskEvents(db, created.taskId)).at(-1)?.eventType, "task.failed");
        },
      );

      await ctx.step(
        "cancelTask() stops a queued task and its message is then dropped",
        async () => {
          const created = await createTask(db, { imageUrl: "http://example.com/cancel.jpg" });
          const [c] = await db.query<{ status: string; changed: boolean }>(
            "select * from darkroom.cancel_task($1::uuid)",
            [created.taskId],
          );
          assert.deepEqual(c, { status: "cancelled", changed: true });
          const [again] = await db.query<{ status: string; changed: boolean }>(
            "select * from darkroom.cancel_task($1::uuid)",
            [created.taskId],
          );
          assert.deepEqual(again, { status: "cancelled", changed: false });
          const rows = await claim(db, "download", "image_download");
          assert.equal(rows.length, 1);
          assert.equal(rows[0].proceed, false);
          const task = await getTask(db, created.taskId);
          assert.equal(task?.error?.code, "cancelled");
          const types = (await listTaskEvents(db, created.taskId)).map((e) => e.eventType);
          assert.deepEqual(types, ["task.created", "task.cancelled"]);
        },
      );

      await ctx.step(
        "the worker transitions run as service_role, as a Supabase client would call them",
        async () => {
          const created = await createTask(db, { imageUrl: "http://example.com/svc.jpg" });
          await db.transaction(async (tx) => {
            await tx.query("set local role service_role");
            await runToCompletion(tx, created.taskId);
          });
          assert.equal((await getTask(db, created.taskId))?.status, "completed");
        },
      );

      await ctx.step("events get increasing sequence numbers and timestamps", async () => {
        const rows = await db.query<{ seq: number; created_at: Date }>(
          "select seq, created_at from public.events order by seq",
        );
        for (let i = 1; i < rows.length; i++) {
          assert.ok(rows[i].seq > rows[i - 1].seq);
          assert.ok(new Date(rows[i].created_at) >= new Date(rows[i - 1].created_at));
        }
      });
    } finally {
      await t.close();
    }
  },
});
