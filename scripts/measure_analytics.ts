/**
 * @module scripts/measure_analytics — events per second of the analytics-worker, one event at a
 * time (`handle`) against a batch per statement (`handleBatch`), in one run on one fresh database
 * (PostgreSQL when DATABASE_URL is set, else PGlite). Not a test: it asserts nothing.
 *
 *   deno run -A scripts/measure_analytics.ts [tasks per round = 300]
 */
import type { Db } from "../shared/db.ts";
import { silentLogger } from "../shared/log.ts";
import { runSubscriberBatch, type SubscriberDefinition } from "../shared/subscriber_runner.ts";
import { analyticsSubscriber } from "../shared/workers/analytics.ts";
import { ENGINE, openTestDb } from "../tests/_helpers/db.ts";

const tasks = Number(Deno.args[0] ?? 300);

/** `n` tasks with a successful task's six events each, queued for analytics by the fan-out. */
async function publish(db: Db, n: number): Promise<number> {
  await db.query(
    `with t as (
       insert into public.tasks (image_url, owner)
       select 'https://example.com/' || i || '.jpg', gen_random_uuid()
         from generate_series(1, $1::integer) i
       returning *)
     select darkroom.publish_event(t, x.type, 'measure', x.payload)
       from t cross join lateral (values
         ('task.created', '{}'::jsonb, 1),
         ('image.downloaded', jsonb_build_object('durationMs', 10 + random() * 500), 2),
         ('image.metadata_extracted', jsonb_build_object('durationMs', random() * 50), 3),
         ('image.analyzed', jsonb_build_object('durationMs', random() * 900,
            'provider', 'local', 'model', 'm',
            'usage', jsonb_build_object('promptTokens', 10, 'completionTokens', 5,
                                        'totalTokens', 15)), 4),
         ('task.completed', jsonb_build_object('durationMs', random() * 2000), 5)
       ) x (type, payload, ord)
      order by t.id, x.ord`,
    [n],
  );
  return n * 5;
}

async function drain(db: Db, def: SubscriberDefinition): Promise<number> {
  const deps = { db, log: silentLogger, maxAttempts: 5 };
  let done = 0;
  for (;;) {
    const s = await runSubscriberBatch(deps, def);
    if (s.read === 0) return done;
    done += s.done;
  }
}

const t = await openTestDb();
try {
  const batched = analyticsSubscriber(t.db);
  const { handleBatch: _, ...oneByOne } = batched;
  await drain(t.db, batched); // whatever bootstrap queued
  for (
    const [name, def] of [["one event at a time", oneByOne], [
      "a batch per statement",
      batched,
    ]] as const
  ) {
    const events = await publish(t.db, tasks);
    const started = performance.now();
    const done = await drain(t.db, def);
    const s = (performance.now() - started) / 1000;
    console.log(
      `${ENGINE} ${name}: ${done}/${events} events in ${s.toFixed(2)} s = ${
        (done / s).toFixed(0)
      } events/s`,
    );
  }
} finally {
  await t.close();
}
