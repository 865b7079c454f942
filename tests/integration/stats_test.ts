// GET /stats reads rollups, not raw rows: what is submitted (tasks, their transitions, events
// with durations and AI usage) is what /stats answers, per owner and for service_role summed over
// owners; then its latency at 1k tasks (through the worker) and at 100k (tasks and rollups
// written in SQL), printed, not asserted.
import assert from "node:assert/strict";
import { createApiApp } from "../../shared/api/app.ts";
import { JwtVerifier, signJwt } from "../../shared/auth.ts";
import { DEV_JWT_SECRET } from "../../shared/config.ts";
import type { Db, Queryable } from "../../shared/db.ts";
import { histogramPercentile, latencyBucket } from "../../shared/histogram.ts";
import { silentLogger } from "../../shared/log.ts";
import { createTask, createTasks } from "../../shared/tasks.ts";
import { drainAnalytics } from "../_helpers/analytics.ts";
import { ENGINE, openTestDb } from "../_helpers/db.ts";

const secret = DEV_JWT_SECRET;
// deno-lint-ignore no-explicit-any
type Json = any;

function statsClient(db: Db) {
  const app = createApiApp({ db, verifier: new JwtVerifier({ secret }), log: silentLogger });
  return async (token: string) => {
    const res = await app.request("/api/stats", { headers: { authorization: `Bearer ${token}` } });
    const json = await res.json() as Json;
    assert.equal(res.status, 200, JSON.stringify(json));
    return json;
  };
}

/** Publishes a stage's completion event for `taskId` as the worker would, with `ms`. */
async function stageEvent(db: Queryable, taskId: string, type: string, ms: number, extra = {}) {
  await db.query(
    `insert into public.events (event_type, task_id, trace_id, owner, source, payload)
     select $2, t.id, t.trace_id, t.owner, 'test', $3::jsonb from public.tasks t where t.id = $1`,
    [taskId, type, JSON.stringify({ imageId: crypto.randomUUID(), durationMs: ms, ...extra })],
  );
}

const histogram = (values: number[]) => {
  const m = new Map<number, number>();
  for (const v of values) m.set(latencyBucket(v), (m.get(latencyBucket(v)) ?? 0) + 1);
  return m;
};
const percentiles = (values: number[]) => ({
  count: values.length,
  p50Ms: histogramPercentile(histogram(values), 0.5),
  p95Ms: histogramPercentile(histogram(values), 0.95),
  p99Ms: histogramPercentile(histogram(values), 0.99),
});

/** Median ms of `n` sequential calls of `fn` after one warm-up. */
async function medianMs(n: number, fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return Math.round(times[Math.floor(n / 2)] * 10) / 10;
}

Deno.test({
  name: "GET /stats answers from rollups what was submitted, per owner and for service_role",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const tdb = await openTestDb();
    const db = tdb.db;
    try {
      const stats = statsClient(db);
      const alice = crypto.randomUUID();
      const bob = crypto.randomUUID();
      const tokens = {
        alice: await signJwt({ role: "authenticated", sub: alice }, secret),
        bob: await signJwt({ role: "authenticated", sub: bob }, secret),
        anon: await signJwt({ role: "anon" }, secret),
        service: await signJwt({ role: "service_role" }, secret),
      };
      const aliceTasks = await createTasks(
        db,
        Array.from({ length: 12 }, (_, i) => ({ imageUrl: `https://e.com/${i}.jpg` })),
        alice,
      );
      const bobTask = await createTask(db, { imageUrl: "https://e.com/b.jpg" }, bob);
      await createTask(db, { imageUrl: "https://e.com/anon.jpg" });
      const ids = aliceTasks.map((t) => t.taskId);
      // Alice: 5 completed, 2 failed, 1 cancelled, 1 processing, 3 queued.
      await db.query(
        `update public.tasks set status = 'completed', stage = null, completed_at = now()
          where id = any($1::uuid[])`,
        [ids.slice(0, 5)],
      );
      await db.query(
        `update public.tasks set status = 'failed', error_code = 'timeout', error_message = 'm'
          where id = any($1::uuid[])`,
        [ids.slice(5, 7)],
      );
      await db.query("update public.tasks set status = 'cancelled' where id = $1", [ids[7]]);
      await db.query("update public.tasks set status = 'processing' where id = $1", [ids[8]]);
      const downloadMs = [3, 12, 40, 41, 90, 250, 800, 1500, 5000, 20_000, 7, 66];
      const aiMs = [900, 1200, 1800, 2500, 4000];
      for (const [i, id] of ids.entries()) {
        await stageEvent(db, id, "image.downloaded", downloadMs[i], {
          sha256: "a".repeat(64),
          contentType: "image/jpeg",
          byteSize: 1,
        });
      }
      for (const [i, id] of ids.slice(0, 5).entries()) {
        await stageEvent(db, id, "image.analyzed", aiMs[i], {
          provider: i < 3 ? "openai" : "local",
          model: i < 3 ? "gpt-4o-mini" : "local-v1",
          caption: "c",
          tags: ["a", "b", "c"],
          safety: {},
          usage: i < 3 ? { promptTokens: 100, completionTokens: 20, totalTokens: 120 } : null,
        });
        await db.query(
          `insert into public.events (event_type, task_id, trace_id, owner, source, payload)
           select 'task.completed', t.id, t.trace_id, t.owner, 'test',
                  jsonb_build_object('imageId', gen_random_uuid(), 'status', 'completed',
                                     'durationMs', 3000 + $2::integer)
             from public.tasks t where t.id = $1`,
          [id, i * 1000],
        );
      }
      await stageEvent(db, bobTask.taskId, "image.downloaded", 999_999, {
        sha256: "a".repeat(64),
        contentType: "image/jpeg",
        byteSize: 1,
      });
      await drainAnalytics(db);

      const a = await stats(tokens.alice);
      assert.equal(a.scope, "own");
      assert.deepEqual(a.tasks, {
        queued: 3,
        processing: 1,
        completed: 5,
        failed: 2,
        cancelled: 1,
      });
      assert.deepEqual(a.stages, {
        download: percentiles(downloadMs),
        ai: percentiles(aiMs),
        total: percentiles([3000, 4000, 5000, 6000, 7000]),
      });
      // Every event of this test happened within the minute or two: both windows hold them.
      // 12 task.created + 12 downloaded + 5 analyzed + 5 completed.
      for (const w of ["lastMinute", "lastHour"]) {
        const { since: _, ...counts } = a.throughput[w];
        assert.deepEqual(counts, { events: 34, created: 12, completed: 5, failed: 0 }, w);
      }
      assert.deepEqual(a.ai, {
        analyzed: 5,
        byProvider: { local: 2, openai: 3 },
        promptTokens: 300,
        completionTokens: 60,
        totalTokens: 360,
        models: [
          {
            provider: "local",
            model: "local-v1",
            calls: 2,
            promptTokens: 0,
            completionTokens: 0,
            totalTokens: 0,
          },
          {
            provider: "openai",
            model: "gpt-4o-mini",
            calls: 3,
            promptTokens: 300,
            completionTokens: 60,
            totalTokens: 360,
          },
        ],
      });
      assert.equal(a.queues, undefined, "queue depths are service_role's only");

      const b = await stats(tokens.bob);
      assert.deepEqual(b.tasks, {
        queued: 1,
        processing: 0,
        completed: 0,
        failed: 0,
        cancelled: 0,
      });
      assert.deepEqual(Object.keys(b.stages), ["download"]);
      assert.equal(b.ai.analyzed, 0);

      const anon = await stats(tokens.anon);
      assert.deepEqual(Object.values(anon.tasks).reduce((x: number, y) => x + Number(y), 0), 0);
      assert.deepEqual(anon.stages, {});

      const all = await stats(tokens.service);
      assert.equal(all.scope, "all");
      assert.deepEqual(all.tasks, {
        queued: 5,
        processing: 1,
        completed: 5,
        failed: 2,
        cancelled: 1,
      });
      assert.deepEqual(all.stages.download, percentiles([...downloadMs, 999_999]));
      assert.equal(all.throughput.lastHour.created, 14);
      assert.deepEqual(all.ai.byProvider, { local: 2, openai: 3 });
      for (const q of ["image_download", "metadata_processing", "ai_processing", "evt_analytics"]) {
        assert.ok(q in all.queues, `queue ${q}`);
      }
      assert.equal(all.queues.evt_analytics.length, 0, "the worker drained its queue");
      assert.ok(all.queues.image_download.length >= 14);

      // A task deleted leaves the counts with it; the trigger sees deletes too.
      await db.query("delete from public.tasks where id = $1", [ids[11]]);
      assert.equal((await stats(tokens.alice)).tasks.queued, 2);
    } finally {
      await tdb.close();
    }
  },
});

Deno.test({
  name: "GET /stats latency at 1k tasks (through the worker) and at 100k (rollups in SQL)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const tdb = await openTestDb();
    const db = tdb.db;
    try {
      const stats = statsClient(db);
      const owner = crypto.randomUUID();
      const user = await signJwt({ role: "authenticated", sub: owner }, secret);
      const service = await signJwt({ role: "service_role" }, secret);

      // 1k: real tasks, one stage event each, counted by the analytics-worker.
      for (let i = 0; i < 10; i++) {
        const made = await createTasks(
          db,
          Array.from({ length: 100 }, (_, j) => ({ imageUrl: `https://e.com/${i}/${j}.jpg` })),
          owner,
        );
        await db.query(
          `insert into public.events (event_type, task_id, trace_id, owner, source, payload)
           select 'image.downloaded', t.id, t.trace_id, t.owner, 'test',
                  jsonb_build_object('imageId', gen_random_uuid(), 'sha256', repeat('a', 64),
                    'contentType', 'image/jpeg', 'byteSize', 1,
                    'durationMs', (random() * 2000)::integer)
             from public.tasks t where t.id = any($1::uuid[])`,
          [made.map((m) => m.taskId)],
        );
      }
      let t0 = performance.now();
      await drainAnalytics(db);
      console.log(
        `analytics-worker counted 2000 events in ${Math.round(performance.now() - t0)} ms`,
      );
      assert.equal((await stats(user)).tasks.queued, 1000);
      const at1k = {
        user: await medianMs(10, () => stats(user)),
        all: await medianMs(10, () => stats(service)),
      };

      t0 = performance.now();
      // 100k: 99k more tasks over 200 owners and 30 days, and their rollups, straight in SQL.
      await db.query(
        `insert into public.tasks (owner, status, stage, image_url, created_at)
         select case when g % 200 = 0 then $1::uuid
                     else ('00000000-0000-4000-8000-' || lpad((g % 200)::text, 12, '0'))::uuid end,
                (array['queued', 'processing', 'completed', 'completed', 'failed'])[1 + g % 5],
                'download', 'https://e.com/' || g, now() - (g % 30) * interval '1 day'
           from generate_series(1, 99000) g`,
        [owner],
      );
      await db.query(
        `with t as (
           select case when g % 200 = 0 then $1::uuid
                       else ('00000000-0000-4000-8000-' || lpad((g % 200)::text, 12, '0'))::uuid
                  end as owner,
                  (now() - (g % 30) * interval '1 day' - (g % 1440) * interval '1 minute') as at,
                  s.stage, (random() * 5000)::bigint as ms
             from generate_series(1, 99000) g,
                  unnest(array['download', 'metadata', 'ai', 'total']) s (stage)
         ), lat as (
           insert into darkroom.analytics_latency (day, owner, stage, bucket, n)
           select (at at time zone 'UTC')::date, owner, stage, darkroom.latency_bucket(ms), count(*)
             from t group by 1, 2, 3, 4
           on conflict on constraint analytics_latency_key do update
             set n = darkroom.analytics_latency.n + excluded.n
         ), mins as (
           insert into darkroom.analytics_counts (period, period_start, owner, dimension, value, n)
           select 'minute', date_trunc('minute', at, 'UTC'), owner, 'event_type',
                  'image.downloaded', count(*)
             from t where stage = 'download' group by 2, 3
           on conflict on constraint analytics_counts_key do update
             set n = darkroom.analytics_counts.n + excluded.n
         )
         insert into darkroom.analytics_ai_usage
           (day, owner, provider, model, calls, prompt_tokens, completion_tokens, total_tokens)
         select (at at time zone 'UTC')::date, owner, 'openai', 'gpt-4o-mini', count(*),
                count(*) * 100, count(*) * 20, count(*) * 120
           from t where stage = 'ai' group by 1, 2
         on conflict on constraint analytics_ai_usage_key do update
           set calls = darkroom.analytics_ai_usage.calls + excluded.calls`,
        [owner],
      );
      await db.query("analyze");
      console.log(
        `99k tasks and their rollups written in ${Math.round(performance.now() - t0)} ms`,
      );
      const [{ n }] = await db.query<{ n: number }>(
        "select count(*)::integer as n from public.tasks",
      );
      assert.equal(n, 100_000);
      assert.equal(
        Object.values((await stats(service)).tasks).reduce((x: number, y) => x + Number(y), 0),
        100_000,
      );
      const at100k = {
        user: await medianMs(10, () => stats(user)),
        all: await medianMs(10, () => stats(service)),
      };
      console.log(
        `GET /stats median latency on ${ENGINE}: 1k tasks user ${at1k.user} ms, ` +
          `service_role ${at1k.all} ms; 100k tasks user ${at100k.user} ms, ` +
          `service_role ${at100k.all} ms`,
      );
    } finally {
      await tdb.close();
    }
  },
});
