// The analytics rollups counted a batch at a time (darkroom.record_analytics_batch through the
// analytics-worker's handleBatch), checked against the events log counted here by a plain
// GROUP BY; a failing batch handled one event at a time instead; and darkroom.rebuild_rollups()
// giving back, from the log, exactly the rollups built incrementally, also after they were
// damaged. service_role only.
import assert from "node:assert/strict";
import type { Db, Queryable } from "../../shared/db.ts";
import { silentLogger } from "../../shared/log.ts";
import { runSubscriberBatch } from "../../shared/subscriber_runner.ts";
import { analyticsSubscriber } from "../../shared/workers/analytics.ts";
import { createTask } from "../../shared/tasks.ts";
import { drainAnalytics } from "../_helpers/analytics.ts";
import { asRole, openTestDb } from "../_helpers/db.ts";

/** Inserts an event of `type` for `taskId`, `agoMinutes` in the past. */
async function insertEvent(
  db: Queryable,
  type: string,
  taskId: string,
  payload: Record<string, unknown>,
  agoMinutes = 0,
): Promise<string> {
  const [{ id }] = await db.query<{ id: string }>(
    `insert into public.events (event_type, task_id, trace_id, owner, source, payload, created_at)
     select $1, t.id, t.trace_id, t.owner, 'test', $3::jsonb,
            now() - make_interval(mins => $4::integer)
       from public.tasks t where t.id = $2
     returning id`,
    [type, taskId, JSON.stringify(payload), agoMinutes],
  );
  return id;
}

/** A task's events, some of them long ago, with durations good, odd and missing. */
async function seed(db: Db, owner: string | undefined, n: number, offset: number) {
  for (let i = 0; i < n; i++) {
    const { taskId } = await createTask(db, { imageUrl: `https://e.com/${i}.jpg` }, owner);
    const ago = (i * 37 + offset) % 300; // spread over five hours of minutes
    const durationMs = i % 7 === 0 ? "slow" : i % 11 === 0 ? -5 : (i + 1) * 13.7;
    await insertEvent(db, "image.downloaded", taskId, { durationMs }, ago);
    await insertEvent(db, "image.metadata_extracted", taskId, { durationMs: i }, ago);
    if (i % 4 === 3) {
      await insertEvent(db, "task.failed", taskId, { stage: "ai", code: "ai_error" }, ago);
      continue;
    }
    await insertEvent(db, "image.analyzed", taskId, {
      provider: i % 2 ? "openai" : "local",
      model: i % 2 ? "gpt-4o-mini" : "heuristic",
      usage: i % 3 ? { promptTokens: i, completionTokens: 2, totalTokens: i + 2 } : null,
      durationMs: 100 + i,
    }, ago);
    await insertEvent(db, "task.completed", taskId, { durationMs: 1000 + 10 * i }, ago);
  }
}

/** Every rollup row, in a stable order. */
async function rollups(db: Queryable) {
  const [counts, latency, ai] = [
    await db.query(
      `select period, period_start::text, owner::text, dimension, value, n::integer
         from darkroom.analytics_counts order by 1, 2, 3 nulls first, 4, 5`,
    ),
    await db.query(
      `select day::text, owner::text, stage, bucket::integer, n::integer
         from darkroom.analytics_latency order by 1, 2 nulls first, 3, 4`,
    ),
    await db.query(
      `select day::text, owner::text, provider, model, calls::integer,
              prompt_tokens::integer, completion_tokens::integer, total_tokens::integer
         from darkroom.analytics_ai_usage order by 1, 2 nulls first, 3, 4`,
    ),
  ];
  return { counts, latency, ai };
}

/** The hourly counts by event type, counted from the log here, independently of the rollups. */
function hourlyFromLog(db: Queryable) {
  return db.query(
    `select date_trunc('hour', created_at, 'UTC')::text as hour, owner::text, event_type,
            count(*)::integer as n
       from public.events group by 1, 2, 3 order by 1, 2 nulls first, 3`,
  );
}

function hourlyFromRollups(db: Queryable) {
  return db.query(
    `select period_start::text as hour, owner::text, value as event_type, n::integer
       from darkroom.analytics_counts where period = 'hour' and dimension = 'event_type'
      order by 1, 2 nulls first, 3`,
  );
}

Deno.test({
  name: "analytics rollups: batches count each event once; rebuild_rollups() equals them",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const tdb = await openTestDb();
    const db = tdb.db;
    const deps = { db, log: silentLogger, maxAttempts: 5 };
    try {
      const alice = crypto.randomUUID();
      const bob = crypto.randomUUID();

      await t.step("a batch per statement counts every event once, as the log says", async () => {
        await seed(db, alice, 20, 0);
        await seed(db, undefined, 6, 11);
        // Each event queued twice: the duplicates share batches with their originals.
        await db.query("select darkroom.replay_events('analytics', 0)");
        const [{ queued }] = await db.query<{ queued: number }>(
          "select count(*)::integer as queued from pgmq.q_evt_analytics",
        );
        const [{ events }] = await db.query<{ events: number }>(
          "select count(*)::integer as events from public.events",
        );
        assert.equal(queued, 2 * events);
        const first = await runSubscriberBatch(deps, analyticsSubscriber(db));
        assert.equal(first.read, 64);
        assert.equal(first.done, 64, JSON.stringify(first));
        await drainAnalytics(db);
        assert.deepEqual(await hourlyFromRollups(db), await hourlyFromLog(db));
        const [{ marks, receipts }] = await db.query<{ marks: number; receipts: number }>(
          `select (select count(*)::integer from darkroom.analytics_counted) as marks,
                  (select count(*)::integer from darkroom.event_receipts
                    where subscription = 'analytics' and status = 'done') as receipts`,
        );
        assert.equal(marks, events);
        assert.equal(receipts, events);
        const [{ left }] = await db.query<{ left: number }>(
          "select count(*)::integer as left from pgmq.q_evt_analytics",
        );
        assert.equal(left, 0, "every message deleted with its batch");
      });

      await t.step("a batch that fails is handled one event at a time instead", async () => {
        await seed(db, bob, 8, 5);
        const failing = {
          ...analyticsSubscriber(db),
          handleBatch: () => Promise.reject(new Error("the batch statement failed")),
        };
        let done = 0;
        for (;;) {
          const s = await runSubscriberBatch(deps, failing);
          if (s.read === 0) break;
          assert.equal(s.errors + s.failed + s.retried, 0, JSON.stringify(s));
          done += s.done;
        }
        assert.ok(done > 0);
        assert.deepEqual(await hourlyFromRollups(db), await hourlyFromLog(db));
      });

      await t.step("rebuild_rollups() gives back the rollups built incrementally", async () => {
        const incremental = await rollups(db);
        assert.ok(incremental.counts.length > 0 && incremental.latency.length > 0);
        assert.ok(incremental.ai.length > 0);
        const [{ events }] = await db.query<{ events: number }>(
          "select count(*)::integer as events from public.events",
        );
        const [{ counted }] = await db.query<{ counted: number }>(
          "select darkroom.rebuild_rollups()::integer as counted",
        );
        assert.equal(counted, events);
        assert.deepEqual(await rollups(db), incremental);

        // After a bug: rows miscounted, lost, and one that should not exist.
        await db.query("update darkroom.analytics_counts set n = n * 3 where value = 'queued'");
        await db.query("delete from darkroom.analytics_latency where stage = 'total'");
        await db.query("update darkroom.analytics_ai_usage set calls = 0");
        await db.query(
          `insert into darkroom.analytics_latency (day, owner, stage, bucket, n)
           values (current_date, null, 'download', 127, 5)`,
        );
        assert.notDeepEqual(await rollups(db), incremental);
        // Small chunks: the log is walked in several steps.
        await db.query("select darkroom.rebuild_rollups(p_chunk => 7)");
        assert.deepEqual(await rollups(db), incremental);
      });

      await t.step(
        "after a rebuild the worker counts new events once, old ones never",
        async () => {
          const before = await rollups(db);
          await db.query("select darkroom.replay_events('analytics', 0)");
          await drainAnalytics(db);
          assert.deepEqual(await rollups(db), before, "a replay of the log counts nothing again");
          await seed(db, alice, 3, 0);
          await drainAnalytics(db);
          assert.deepEqual(await hourlyFromRollups(db), await hourlyFromLog(db));
        },
      );

      await t.step(
        "rebuild_rollups() is service_role's only, and refuses a bad chunk",
        async () => {
          for (const role of ["anon", "authenticated"]) {
            const err = await asRole(
              db,
              role,
              { sub: alice },
              (tx) => tx.query("select darkroom.rebuild_rollups()"),
            );
            assert.match(String(err), /permission denied/, role);
          }
          const ok = await asRole(
            db,
            "service_role",
            {},
            (tx) => tx.query<{ n: number }>("select darkroom.rebuild_rollups()::integer as n"),
          );
          assert.ok(Array.isArray(ok) && ok[0].n > 0, String(ok));
          await assert.rejects(db.query("select darkroom.rebuild_rollups(0)"), /invalid chunk/);
        },
      );
    } finally {
      await tdb.close();
    }
  },
});
