// The analytics rollups: the analytics-worker counts every event (through the fan-out) into the
// latency histograms, the per-minute / per-hour counts and the AI usage per day, each event once
// however often it is delivered or replayed. The worker runs through its HTTP handler.
import assert from "node:assert/strict";
import type { Queryable } from "../../shared/db.ts";
import { histogramPercentile, latencyBucket, latencyBucketValue } from "../../shared/histogram.ts";
import { createTask } from "../../shared/tasks.ts";
import { drainAnalytics } from "../_helpers/analytics.ts";
import { openTestDb } from "../_helpers/db.ts";

/** Inserts one event of `type` for `taskId` (owner `owner`) with `payload`. */
async function insertEvent(
  db: Queryable,
  type: string,
  taskId: string,
  owner: string | null,
  payload: Record<string, unknown>,
): Promise<string> {
  const [{ id }] = await db.query<{ id: string }>(
    `insert into public.events (event_type, task_id, trace_id, owner, source, payload)
     select $1, t.id, t.trace_id, $3::uuid, 'test', $4::jsonb from public.tasks t where t.id = $2
     returning id`,
    [type, taskId, owner, JSON.stringify(payload)],
  );
  return id;
}

Deno.test("latencyBucket() and latencyBucketValue() agree with darkroom.latency_bucket*()", async () => {
  const inputs = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 100, 999, 1000, 1024, 65_536, 10 ** 7];
  for (let ms = 1; ms < 5000; ms = Math.ceil(ms * 1.07)) inputs.push(ms);
  const t = await openTestDb();
  try {
    const rows = await t.db.query<{ ms: number; b: number; v: number }>(
      `select ms::float8 as ms, darkroom.latency_bucket(ms)::integer as b,
              darkroom.latency_bucket_value(darkroom.latency_bucket(ms))::float8 as v
         from unnest($1::bigint[]) ms`,
      [inputs],
    );
    for (const r of rows) {
      assert.equal(latencyBucket(r.ms), r.b, `bucket of ${r.ms}`);
      assert.equal(latencyBucketValue(r.b), r.v, `value of bucket ${r.b}`);
      if (r.ms >= 1) assert.ok(Math.abs(r.v - r.ms) / r.ms <= 0.2, `${r.ms} ms reads ${r.v}`);
    }
  } finally {
    await t.close();
  }
  assert.equal(histogramPercentile(new Map(), 0.5), 0);
  assert.equal(
    histogramPercentile(new Map([[latencyBucket(10), 99], [latencyBucket(1000), 1]]), 0.99),
    latencyBucketValue(latencyBucket(10)),
  );
});

Deno.test({
  name: "analytics-worker: rollups count every event once, however often it is delivered",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const tdb = await openTestDb();
    const db = tdb.db;
    try {
      const alice = crypto.randomUUID();
      const tasks: string[] = [];
      const downloadMs = [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560];
      await t.step("counts, histograms and AI usage follow the events", async () => {
        for (const ms of downloadMs) {
          const { taskId } = await createTask(db, { imageUrl: "https://e.com/a.jpg" }, alice);
          tasks.push(taskId);
          const imageId = crypto.randomUUID();
          await insertEvent(db, "image.downloaded", taskId, alice, {
            imageId,
            sha256: "a".repeat(64),
            contentType: "image/jpeg",
            byteSize: 1,
            durationMs: ms,
          });
          await insertEvent(db, "image.analyzed", taskId, alice, {
            imageId,
            provider: "openai",
            model: "gpt-4o-mini",
            caption: "c",
            tags: ["a", "b", "c"],
            safety: {},
            usage: { promptTokens: 10, completionTokens: 5, totalTokens: 15 },
            durationMs: 7,
          });
        }
        const { taskId: anonTask } = await createTask(db, { imageUrl: "https://e.com/b.jpg" });
        await insertEvent(db, "task.failed", anonTask, null, {
          stage: "download",
          code: "http_status",
          message: "m",
          attempts: 1,
        });
        assert.equal(await drainAnalytics(db), 32);

        const counts = await db.query<
          { owner: string | null; dimension: string; value: string; n: number }
        >(
          `select owner::text, dimension, value, sum(n)::integer as n from darkroom.analytics_counts
            where period = 'hour' group by 1, 2, 3 order by 1 nulls first, 2, 3`,
        );
        assert.deepEqual(counts, [
          { owner: null, dimension: "event_type", value: "task.created", n: 1 },
          { owner: null, dimension: "event_type", value: "task.failed", n: 1 },
          { owner: null, dimension: "status", value: "failed", n: 1 },
          { owner: null, dimension: "status", value: "queued", n: 1 },
          { owner: alice, dimension: "event_type", value: "image.analyzed", n: 10 },
          { owner: alice, dimension: "event_type", value: "image.downloaded", n: 10 },
          { owner: alice, dimension: "event_type", value: "task.created", n: 10 },
          { owner: alice, dimension: "status", value: "queued", n: 10 },
        ]);
        const [{ minutes }] = await db.query<{ minutes: number }>(
          `select sum(n)::integer as minutes from darkroom.analytics_counts
            where period = 'minute' and dimension = 'event_type'`,
        );
        assert.equal(minutes, 32, "the minutes hold every event too");

        const hist = await db.query<{ bucket: number; n: number }>(
          `select bucket::integer, sum(n)::integer as n from darkroom.analytics_latency
            where stage = 'download' group by 1 order by 1`,
        );
        const expected = new Map<number, number>();
        for (const ms of downloadMs) {
          expected.set(latencyBucket(ms), (expected.get(latencyBucket(ms)) ?? 0) + 1);
        }
        assert.deepEqual(new Map(hist.map((h) => [h.bucket, h.n])), expected);
        const [ai] = await db.query(
          `select provider, model, calls::integer, prompt_tokens::integer, completion_tokens::integer,
                  total_tokens::integer, owner::text from darkroom.analytics_ai_usage`,
        );
        assert.deepEqual(ai, {
          provider: "openai",
          model: "gpt-4o-mini",
          calls: 10,
          prompt_tokens: 100,
          completion_tokens: 50,
          total_tokens: 150,
          owner: alice,
        });
      });

      const snapshot = () =>
        db.query(
          `select (select sum(n) from darkroom.analytics_counts)::text as c,
                  (select sum(n) from darkroom.analytics_latency)::text as l,
                  (select sum(calls) from darkroom.analytics_ai_usage)::text as a`,
        );

      await t.step("a replay of the whole log counts nothing twice", async () => {
        const before = await snapshot();
        const [{ sent }] = await db.query<{ sent: number }>(
          "select darkroom.replay_events('analytics', 0) as sent",
        );
        assert.equal(sent, 32);
        // replay_events drops the receipts of the range: every event is handled again, and
        // record_analytics' own mark keeps the rollups from counting it twice.
        assert.equal(await drainAnalytics(db), 32);
        assert.deepEqual(await snapshot(), before);
      });

      await t.step("record_analytics() counts once even when the ack never came", async () => {
        const before = await snapshot();
        // A worker that committed the rollup and died before its ack: the message comes again.
        const id = await insertEvent(db, "task.cancelled", tasks[0], alice, { stage: null });
        const [first] = await db.query<{ r: boolean }>(
          "select darkroom.record_analytics($1::uuid) as r",
          [id],
        );
        assert.equal(first.r, true);
        const [again] = await db.query<{ r: boolean }>(
          "select darkroom.record_analytics($1::uuid) as r",
          [id],
        );
        assert.equal(again.r, false);
        assert.equal(await drainAnalytics(db), 1, "the queued message is handled");
        const after = await snapshot() as { c: string }[];
        assert.equal(
          Number(after[0].c) - Number((before as { c: string }[])[0].c),
          4,
          "task.cancelled and status cancelled, per minute and per hour",
        );
      });
    } finally {
      await tdb.close();
    }
  },
});
