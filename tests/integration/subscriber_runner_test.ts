// The subscriber runner (shared/subscriber_runner.ts) over the subscriber transitions
// (20261128000013): batches, exactly-once handling by eventId, retries with backoff through the
// visibility timeout, archive with the error on the final failure, and the HTTP handler that
// answers service_role only. A subscriber never changes a task.
import assert from "node:assert/strict";
import { JwtVerifier, signJwt } from "../../shared/auth.ts";
import { DEV_JWT_SECRET } from "../../shared/config.ts";
import type { Queryable } from "../../shared/db.ts";
import { StageError } from "../../shared/errors.ts";
import { silentLogger } from "../../shared/log.ts";
import { Queue } from "../../shared/queue.ts";
import type { RunnerDeps } from "../../shared/stage_runner.ts";
import {
  type EventJob,
  runSubscriberBatch,
  type SubscriberDefinition,
  type SubscriberSummary,
} from "../../shared/subscriber_runner.ts";
import { createTask } from "../../shared/tasks.ts";
import { createSubscriberHandler } from "../../shared/workers/handler.ts";
import { openTestDb, recordingDb } from "../_helpers/db.ts";

async function subscribe(db: Queryable, name: string, type: string) {
  await db.query(
    `insert into darkroom.subscriptions (name, queue, worker_function) values ($1, $2, $3)`,
    [name, `evt_${name}`, `${name}-worker`],
  );
  await db.query(
    "insert into darkroom.subscription_event_types (subscription, event_type) values ($1, $2)",
    [name, type],
  );
}

async function publish(db: Queryable, taskId: string, type: string, payload = {}) {
  await db.query(
    `select darkroom.publish_event(t, $2, 'test', $3::jsonb) from public.tasks t where t.id = $1`,
    [taskId, type, JSON.stringify(payload)],
  );
}

/** Runs batches until one reads nothing; returns the summaries. */
async function runUntilIdle(deps: RunnerDeps, def: SubscriberDefinition) {
  const out: SubscriberSummary[] = [];
  for (;;) {
    const s = await runSubscriberBatch(deps, def);
    if (s.read === 0) return out;
    out.push(s);
  }
}

const total = (ss: SubscriberSummary[], k: keyof SubscriberSummary) =>
  ss.reduce((a, s) => a + Number(s[k]), 0);

Deno.test({
  name: "runSubscriberBatch() handles each event once, retries, archives, never touches tasks",
  sanitizeResources: false,
  async fn(t) {
    const tdb = await openTestDb();
    const db = tdb.db;
    const deps: RunnerDeps = { db, log: silentLogger, maxAttempts: 3 };
    try {
      await subscribe(db, "counter", "task.cancelled");
      const task = await createTask(db, { imageUrl: "https://example.com/a.jpg" });
      const [before] = await db.query("select * from public.tasks where id = $1", [task.taskId]);
      const seen: string[] = [];
      let behaviour: (job: EventJob) => void = () => {};
      const def: SubscriberDefinition = {
        subscriber: "counter",
        source: "counter-worker",
        batchSize: 7,
        retryDelaySeconds: () => 0,
        handle: (job) => {
          behaviour(job);
          seen.push(job.event.eventId);
          return Promise.resolve();
        },
      };

      await t.step(
        "a subscriber stopped while 100 events are published gets each exactly once",
        async () => {
          for (let i = 0; i < 100; i++) await publish(db, task.taskId, "task.cancelled", { i });
          // A duplicate message (at-least-once delivery) of an event is dropped unseen once the
          // event is handled.
          const [first] = await db.query<{ m: Record<string, unknown> }>(
            `select darkroom.subscriber_message(e) as m from public.events e
            where e.task_id = $1 and e.event_type = 'task.cancelled' order by seq limit 1`,
            [task.taskId],
          );
          const summaries = await runUntilIdle(deps, def);
          assert.equal(total(summaries, "done"), 100);
          assert.equal(seen.length, 100);
          assert.equal(new Set(seen).size, 100, "each event once");
          assert.ok(summaries.every((s) => s.read <= 7), "batches of batchSize");
          assert.ok(summaries.slice(0, -1).every((s) => s.more), "a full batch: more may wait");
          assert.equal(summaries.at(-1)!.more, false, "the short last batch emptied the queue");
          await new Queue(db, "evt_counter").send(first.m);
          const again = await runUntilIdle(deps, def);
          assert.equal(total(again, "ignored"), 1);
          assert.equal(seen.length, 100, "the duplicate was not handled");
          const [{ n }] = await db.query<{ n: number }>(
            "select count(*)::integer as n from darkroom.event_receipts where subscription = 'counter' and status = 'done'",
          );
          assert.equal(n, 100);
        },
      );

      await t.step("events handled together are acked in one ack_events call", async () => {
        seen.length = 0;
        for (let i = 0; i < 4; i++) await publish(db, task.taskId, "task.cancelled", { i });
        const { db: spy, seen: sql } = recordingDb(db);
        let started = 0;
        let release!: () => void;
        const all = new Promise<void>((r) => release = r);
        const together: SubscriberDefinition = {
          ...def,
          concurrency: 4,
          handle: async (job) => {
            if (++started === 4) release();
            await all;
            seen.push(job.event.eventId);
          },
        };
        const [summary] = await runUntilIdle({ ...deps, db: spy }, together);
        assert.equal(summary.done, 4);
        const acks = sql.filter((text) => /darkroom\.ack_events?\(/.test(text));
        assert.ok(acks.some((text) => text.includes("ack_events(")), "a group ack ran");
        assert.ok(acks.length <= 2, `${acks.length} ack statements for 4 events`);
        const [{ n, left }] = await db.query<{ n: number; left: number }>(
          `select (select count(*)::integer from darkroom.event_receipts r
                    where r.subscription = 'counter' and r.status = 'done'
                      and r.event_id = any($1::uuid[])) as n,
                  (select count(*)::integer from pgmq.q_evt_counter) as left`,
          [seen],
        );
        assert.equal(n, 4, "a done receipt for each");
        assert.equal(left, 0, "every message deleted");
      });

      await t.step("a transient failure is retried, then succeeds; tries are read_ct", async () => {
        seen.length = 0;
        const tries: number[] = [];
        behaviour = (job) => {
          tries.push(job.attempt);
          if (job.attempt < 3) throw new StageError("http_status", "status 503", true);
        };
        await publish(db, task.taskId, "task.cancelled");
        const s = await runUntilIdle(deps, def);
        assert.deepEqual(tries, [1, 2, 3]);
        assert.equal(total(s, "retried"), 2);
        assert.equal(total(s, "done"), 1);
        assert.equal(seen.length, 1);
      });

      await t.step("the backoff hides the message for the delay the policy gives", async () => {
        const slow: SubscriberDefinition = { ...def, retryDelaySeconds: undefined };
        behaviour = () => {
          throw new StageError("http_status", "status 503", true, { retryAfterSeconds: 30 });
        };
        await publish(db, task.taskId, "task.cancelled");
        const [s] = await runUntilIdle(deps, slow);
        assert.equal(s.retried, 1);
        const [{ wait }] = await db.query<{ wait: number }>(
          "select extract(epoch from (vt - now()))::integer as wait from pgmq.q_evt_counter",
        );
        assert.ok(wait >= 28 && wait <= 31, `Retry-After honoured: ${wait}`);
        await db.query("select pgmq.purge_queue('evt_counter')");
      });

      await t.step("after MAX_ATTEMPTS the message is archived with the error", async () => {
        behaviour = () => {
          throw new StageError("timeout", "timed out", true);
        };
        await publish(db, task.taskId, "task.cancelled");
        const s = await runUntilIdle(deps, def);
        assert.equal(total(s, "retried"), 2);
        assert.equal(total(s, "failed"), 1);
        const [receipt] = await db.query<{ status: string; attempts: number; error: string }>(
          `select r.status, r.attempts, r.error from darkroom.event_receipts r
             join public.events e on e.id = r.event_id
            where r.subscription = 'counter' order by e.seq desc limit 1`,
        );
        assert.deepEqual(receipt, { status: "failed", attempts: 3, error: "timeout: timed out" });
        const [{ n }] = await db.query<{ n: number }>(
          "select count(*)::integer as n from pgmq.a_evt_counter",
        );
        assert.equal(n, 1);
      });

      await t.step("a permanent failure is archived at once", async () => {
        behaviour = () => {
          throw new StageError("blocked_address", "blocked", false);
        };
        await publish(db, task.taskId, "task.cancelled");
        const s = await runUntilIdle(deps, def);
        assert.equal(total(s, "failed"), 1);
        assert.equal(total(s, "retried"), 0);
      });

      await t.step("a replay handles the range again", async () => {
        behaviour = () => {};
        seen.length = 0;
        const [{ n }] = await db.query<{ n: number }>(
          "select darkroom.replay_events('counter', 0) as n",
        );
        const s = await runUntilIdle(deps, def);
        assert.equal(total(s, "done"), n);
        assert.equal(seen.length, n);
      });

      await t.step("the task row was never touched", async () => {
        const [after] = await db.query("select * from public.tasks where id = $1", [task.taskId]);
        assert.deepEqual(after, before);
      });

      await t.step("the HTTP handler answers service_role only", async () => {
        const handler = createSubscriberHandler({
          ...deps,
          verifier: new JwtVerifier({ secret: DEV_JWT_SECRET }),
        }, def);
        const call = async (token?: string) =>
          await handler(
            new Request("http://x/counter-worker", {
              method: "POST",
              headers: token ? { authorization: `Bearer ${token}` } : {},
            }),
          );
        assert.equal((await call()).status, 401);
        const anon = await call(await signJwt({ role: "anon" }, DEV_JWT_SECRET));
        assert.equal(anon.status, 403);
        await anon.body?.cancel();
        const ok = await call(await signJwt({ role: "service_role" }, DEV_JWT_SECRET));
        assert.equal(ok.status, 200);
        const body = await ok.json();
        assert.equal(body.worker, "counter-worker");
        assert.equal(body.queue, "evt_counter");
      });
    } finally {
      await tdb.close();
    }
  },
});
