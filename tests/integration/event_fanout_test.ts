// The event fan-out (supabase/migrations/20261128000012_event_fanout.sql): subscriptions are
// rows, the trigger on public.events fills every enabled matching subscriber's queue in the
// inserting transaction, replay_events back-fills, and darkroom.worker_queues lists the
// subscribers' workers. On PGlite and, with DATABASE_URL, on PostgreSQL with the real pgmq.
import assert from "node:assert/strict";
import type { Queryable } from "../../shared/db.ts";
import { Queue } from "../../shared/queue.ts";
import { readWorkerQueues } from "../../shared/stages.ts";
import { createTask } from "../../shared/tasks.ts";
import { openTestDb } from "../_helpers/db.ts";

interface SubscriberMessage {
  eventId: string;
  taskId: string | null;
  traceId: string;
  eventType: string;
}

/** Adds a subscription the way an operator would: rows, nothing else. */
async function subscribe(
  db: Queryable,
  name: string,
  types: string[] | "every",
  enabled = true,
): Promise<Queue<SubscriberMessage>> {
  await db.query(
    `insert into darkroom.subscriptions (name, queue, worker_function, every_event, enabled)
     values ($1, $2, $3, $4, $5)`,
    [name, `evt_${name}`, `${name.replaceAll("_", "-")}-worker`, types === "every", enabled],
  );
  for (const t of types === "every" ? [] : types) {
    await db.query(
      "insert into darkroom.subscription_event_types (subscription, event_type) values ($1, $2)",
      [name, t],
    );
  }
  return new Queue<SubscriberMessage>(db, `evt_${name}`);
}

/** Publishes `type` for a task as the transitions do (darkroom.publish_event). */
async function publish(db: Queryable, taskId: string, type: string, payload = {}) {
  await db.query(
    `select darkroom.publish_event(t, $2, 'test', $3::jsonb) from public.tasks t where t.id = $1`,
    [taskId, type, JSON.stringify(payload)],
  );
}

/** Reads and deletes everything visible on `queue`. */
async function drain(queue: Queue<SubscriberMessage>): Promise<SubscriberMessage[]> {
  const out: SubscriberMessage[] = [];
  for (;;) {
    const batch = await queue.read(30, 50);
    if (batch.length === 0) return out;
    for (const m of batch) {
      out.push(m.message);
      await queue.delete(m.msgId);
    }
  }
}

Deno.test({
  name: "event fan-out: subscriptions are rows, the trigger enqueues in the same transaction",
  sanitizeResources: false,
  async fn(t) {
    const tdb = await openTestDb();
    const db = tdb.db;
    try {
      const cancelled = await subscribe(db, "test_cancelled", ["task.cancelled"]);
      const everything = await subscribe(db, "test_all", "every");
      const off = await subscribe(db, "test_off", ["task.created"], false);

      await t.step(
        "the seeded subscribers exist, each enabled with its worker",
        async () => {
          const rows = await db.query<{ name: string; queue: string; enabled: boolean }>(
            `select name, queue, enabled from darkroom.subscriptions
            where name not like 'test_%' order by name`,
          );
          assert.deepEqual(rows.map((r) => [r.name, r.queue]), [
            ["analytics", "evt_analytics"],
            ["notification", "evt_notification"],
            ["tag_indexer", "evt_tag_indexer"],
          ]);
          assert.ok(rows.every((r) => r.enabled), "every seeded subscriber has its worker");
          const queues = await db.query<{ queue_name: string }>(
            "select queue_name from pgmq.list_queues()",
          );
          for (
            const q of ["evt_analytics", "evt_notification", "evt_tag_indexer", "evt_test_all"]
          ) {
            assert.ok(queues.some((r) => r.queue_name === q), `queue ${q} exists`);
          }
        },
      );

      await t.step("an insert reaches every enabled matching subscriber, ids only", async () => {
        const task = await createTask(db, { imageUrl: "https://example.com/a.jpg" });
        await publish(db, task.taskId, "task.cancelled", { stage: null });
        const [event] = await db.query<{ id: string }>(
          "select id from public.events where task_id = $1 and event_type = 'task.cancelled'",
          [task.taskId],
        );
        assert.deepEqual(await drain(cancelled), [{
          eventId: event.id,
          taskId: task.taskId,
          traceId: task.traceId,
          eventType: "task.cancelled",
        }]);
        const all = await drain(everything);
        assert.deepEqual(all.map((m) => m.eventType), ["task.created", "task.cancelled"]);
        assert.deepEqual(await drain(off), [], "a disabled subscription receives nothing");
      });

      await t.step("an event rolled back is never announced", async () => {
        const task = await createTask(db, { imageUrl: "https://example.com/b.jpg" });
        await drain(everything);
        await db.transaction(async (tx) => {
          await publish(tx, task.taskId, "task.cancelled", { stage: null });
          const inside = await tx.query<{ n: number }>(
            "select count(*)::integer as n from pgmq.q_evt_test_cancelled",
          );
          assert.equal(inside[0].n, 1, "sent inside the inserting transaction");
          throw new Error("roll back");
        }).catch((err) => assert.equal((err as Error).message, "roll back"));
        assert.deepEqual(await drain(cancelled), []);
        assert.deepEqual(await drain(everything), []);
      });

      await t.step(
        "a subscriber stopped while 100 events are published gets each once",
        async () => {
          const task = await createTask(db, { imageUrl: "https://example.com/c.jpg" });
          await drain(everything);
          for (let i = 0; i < 100; i++) await publish(db, task.taskId, "task.cancelled", { i });
          const got = await drain(cancelled);
          assert.equal(got.length, 100);
          assert.equal(new Set(got.map((m) => m.eventId)).size, 100, "no duplicates");
          assert.equal((await drain(everything)).length, 100);
        },
      );

      await t.step(
        "replay_events back-fills a new subscriber with the whole log, in order",
        async () => {
          const late = await subscribe(db, "test_late", "every");
          const log = await db.query<{ id: string; seq: number }>(
            "select id, seq from public.events order by seq",
          );
          const [{ n }] = await db.query<{ n: number }>(
            "select darkroom.replay_events('test_late', 0) as n",
          );
          assert.equal(n, log.length);
          assert.deepEqual((await drain(late)).map((m) => m.eventId), log.map((e) => e.id));

          // A range, bounds included, filtered by the subscriber's types.
          const [{ sent }] = await db.query<{ sent: number }>(
            "select darkroom.replay_events('test_cancelled', $1, $2) as sent",
            [log[0].seq, log[4].seq],
          );
          const types = await db.query<{ event_type: string }>(
            "select event_type from public.events where seq between $1 and $2",
            [log[0].seq, log[4].seq],
          );
          assert.equal(sent, types.filter((r) => r.event_type === "task.cancelled").length);
          assert.equal((await drain(cancelled)).length, sent);
        },
      );

      await t.step(
        "replay_events refuses an unknown subscriber and an inverted range",
        async () => {
          await assert.rejects(
            db.query("select darkroom.replay_events('nobody', 0)"),
            /unknown subscriber: nobody/,
          );
          await assert.rejects(
            db.query("select darkroom.replay_events('test_all', 10, 5)"),
            /invalid range/,
          );
        },
      );

      await t.step("a subscription cannot take a stage's queue", async () => {
        await assert.rejects(
          db.query(
            `insert into darkroom.subscriptions (name, queue, worker_function)
             values ('thief', 'image_download', 'thief-worker')`,
          ),
          /belongs to a stage/,
        );
      });

      await t.step("worker_queues lists the stages, then the enabled subscribers", async () => {
        const workers = await readWorkerQueues(db);
        assert.deepEqual(
          workers.filter((w) => w.kind === "stage").map((w) => w.worker),
          ["download-worker", "metadata-worker", "ai-worker"],
        );
        const subs = workers.filter((w) => w.kind === "subscriber").map((w) => w.queue);
        assert.ok(subs.includes("evt_test_all") && subs.includes("evt_test_cancelled"));
        assert.ok(!subs.includes("evt_test_off"), "a disabled subscriber is not driven");
        assert.ok(workers.findIndex((w) => w.kind === "subscriber") > 2, "stages come first");
      });

      await t.step("service_role may replay and drain a subscriber queue", async () => {
        await publish(
          db,
          (await createTask(db, { imageUrl: "https://e.com/d.jpg" })).taskId,
          "task.cancelled",
          { stage: null },
        );
        const rows = await db.transaction(async (tx) => {
          await tx.query("select set_config('role', 'service_role', true)");
          await tx.query("select darkroom.replay_events('test_cancelled', 0)");
          const msgs = await new Queue(tx, "evt_test_cancelled").read(30, 500);
          for (const m of msgs) await new Queue(tx, "evt_test_cancelled").delete(m.msgId);
          return msgs;
        });
        assert.ok(rows.length > 100);
      });
    } finally {
      await tdb.close();
    }
  },
});
