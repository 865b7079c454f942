// The lists SQL enforces and the TypeScript constants that restate them must agree: the stage
// registry, event types, task statuses and task error codes. And every event payload the SQL
// functions build must pass its zod schema, for every event type.
import assert from "node:assert/strict";
import type { Queryable } from "../../shared/db.ts";
import { TASK_ERROR_CODES } from "../../shared/errors.ts";
import { EVENT_TYPES, validateEvent } from "../../shared/events.ts";
import { Queue } from "../../shared/queue.ts";
import { STAGES } from "../../shared/stages.ts";
import { createTask, listTaskEvents, TASK_STATUSES } from "../../shared/tasks.ts";
import { openTestDb } from "../_helpers/db.ts";

/** The quoted values of a check constraint's `in (...)` list. */
async function checkValues(db: Queryable, table: string, constraint: string): Promise<string[]> {
  const [row] = await db.query<{ def: string }>(
    `select pg_get_constraintdef(c.oid) as def from pg_constraint c
      where c.conrelid = $1::regclass and c.conname = $2`,
    [table, constraint],
  );
  assert.ok(row, `${table} has a constraint ${constraint}`);
  return [...row.def.matchAll(/'([^']+)'::text/g)].map((m) => m[1]).sort();
}

Deno.test({
  name: "SQL and TypeScript agree on stages, event types, statuses and error codes",
  sanitizeResources: false, // the pool stays open across the two tests of this file
  async fn() {
    const t = await openTestDb();
    try {
      const stages = await t.db.query<Record<string, string>>(
        `select name, queue, worker_function as worker, completed_event as "completedEvent"
           from darkroom.stages order by position`,
      );
      assert.deepEqual(stages, STAGES.map((s) => ({ ...s })), "darkroom.stages = STAGES");
      const types = await t.db.query<{ name: string }>(
        "select name from darkroom.event_types order by name",
      );
      assert.deepEqual(types.map((r) => r.name), [...EVENT_TYPES].sort(), "event types");
      assert.deepEqual(
        await checkValues(t.db, "public.tasks", "status_is_known"),
        [...TASK_STATUSES].sort(),
        "task statuses",
      );
      assert.deepEqual(
        await checkValues(t.db, "public.tasks", "error_code_is_known"),
        [...TASK_ERROR_CODES].sort(),
        "task error codes",
      );
    } finally {
      await t.close();
    }
  },
});

const SHA = "a".repeat(64);
const RESULTS: Record<string, unknown> = {
  download: { sha256: SHA, contentType: "image/jpeg", byteSize: 10, storagePath: "sha256/a" },
  metadata: {
    width: 4,
    height: 3,
    format: "jpeg",
    metadata: {
      make: "NIKON",
      model: "D70",
      takenAt: "2008-10-22T16:38:20",
      orientation: 1,
      gps: { lat: 43.46, lon: 11.88 },
      exif: {},
      partial: false,
    },
    thumbnail: null,
  },
  ai: {
    analysis: {
      provider: "local",
      model: "m",
      caption: "A photo",
      tags: ["a", "b", "c"],
      safety: { adult: false, violence: false, selfHarm: false },
      usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3 },
    },
  },
};

/** Claims the one visible message of a stage's queue for `taskId`. */
async function claim(db: Queryable, stage: string, queue: string, taskId: string) {
  const [m] = await new Queue<{ taskId: string }>(db, queue).read(30, 1);
  assert.equal(m?.message.taskId, taskId, `a ${stage} message for the task`);
  await db.query(
    `select * from darkroom.begin_stage(p_stage => $1, p_msg_ids => $2::bigint[],
       p_task_ids => $3::uuid[], p_max_attempts => 5)`,
    [stage, [m.msgId], [taskId]],
  );
  return m.msgId;
}

Deno.test({
  name: "every event type the SQL functions publish passes its zod schema",
  sanitizeResources: false,
  async fn() {
    const t = await openTestDb();
    try {
      const db = t.db;
      const seen = new Set<string>();
      const check = async (taskId: string) => {
        for (const event of await listTaskEvents(db, taskId)) {
          assert.deepEqual(
            validateEvent(event),
            [],
            `${event.eventType}: ${JSON.stringify(event)}`,
          );
          seen.add(event.eventType);
        }
      };

      // A task through every stage, with one scheduled retry on the way.
      const ok = await createTask(db, { imageUrl: "http://example.com/a.jpg" });
      for (const s of STAGES) {
        let msg = await claim(db, s.name, s.queue, ok.taskId);
        if (s.name === "metadata") {
          await db.query(
            `select darkroom.schedule_retry($1::uuid, $2, $3::bigint, 0, 'timeout', 'Slow', $4)`,
            [ok.taskId, s.name, msg, s.worker],
          );
          msg = await claim(db, s.name, s.queue, ok.taskId);
        }
        await db.query(
          "select darkroom.complete_stage($1::uuid, $2, $3::bigint, $4::jsonb, $5)",
          [ok.taskId, s.name, msg, JSON.stringify(RESULTS[s.name]), s.worker],
        );
      }
      await check(ok.taskId);

      // A task that fails, is retried by hand, and is cancelled.
      const bad = await createTask(db, { imageUrl: "http://example.com/b.jpg" });
      const msg = await claim(db, "download", "image_download", bad.taskId);
      await db.query(
        `select darkroom.fail_stage($1::uuid, 'download', $2::bigint, 'http_status', 'Status 404',
           'download-worker')`,
        [bad.taskId, msg],
      );
      await db.query("select * from darkroom.retry_task($1::uuid)", [bad.taskId]);
      await db.query("select * from darkroom.cancel_task($1::uuid)", [bad.taskId]);
      await check(bad.taskId);

      // A task told to wait for the budget (task.throttled), released without a try.
      await db.query("select pgmq.purge_queue('image_download')");
      const held = await createTask(db, { imageUrl: "http://example.com/c.jpg" });
      const heldMsg = await claim(db, "download", "image_download", held.taskId);
      await db.query(
        `select darkroom.release_stage('download', $1::bigint, $2::uuid, 5, 'budget',
           'download-worker', '{"budget": "global", "spentTokens": 10, "dailyTokens": 10}')`,
        [heldMsg, held.taskId],
      );
      await check(held.taskId);

      assert.deepEqual([...seen].sort(), [...EVENT_TYPES].sort(), "every event type was seen");
    } finally {
      await t.close();
    }
  },
});
