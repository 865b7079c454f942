/**
 * @module scripts/measure_stats — GET /stats latency at 1k and at 100k tasks, each task with a
 * successful task's five events, written in bulk in SQL into a fresh database (PostgreSQL when
 * DATABASE_URL is set, else PGlite), the rollups rebuilt from that log by
 * darkroom.rebuild_rollups(). Not a test: it prints, asserts nothing.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres deno run -A scripts/measure_stats.ts
 */
import { createApiApp } from "../shared/api/app.ts";
import { JwtVerifier, signJwt } from "../shared/auth.ts";
import { DEV_JWT_SECRET } from "../shared/config.ts";
import type { Db } from "../shared/db.ts";
import { silentLogger } from "../shared/log.ts";
import { ENGINE, openTestDb } from "../tests/_helpers/db.ts";

const me = "00000000-0000-4000-8000-000000000000";

/** Tasks `from`..`to` (200 owners, `me` among them, over 30 days), five events each. */
async function addTasks(db: Db, from: number, to: number) {
  const tasks = await db.query<{ id: string }>(
    `insert into public.tasks (owner, status, stage, image_url, created_at)
     select ('00000000-0000-4000-8000-' || lpad((g % 200)::text, 12, '0'))::uuid,
            'completed', null, 'https://e.com/' || g,
            now() - (g % 30) * interval '1 day' - (g % 1440) * interval '1 minute'
       from generate_series($1::integer, $2::integer) g
     returning id`,
    [from, to],
  );
  await db.transaction(async (tx) => {
    // Bulk load: no fan-out messages and no Realtime broadcasts (the events' row triggers); the
    // rollups are rebuilt from the log after.
    await tx.query("set local session_replication_role = replica");
    await tx.query(
      `insert into public.events (event_type, task_id, trace_id, owner, source, payload, created_at)
       select x.type, t.id, t.trace_id, t.owner, 'measure', x.payload,
              t.created_at + x.ord * interval '1 second'
         from public.tasks t cross join lateral (values
           ('task.created', '{}'::jsonb, 0),
           ('image.downloaded', jsonb_build_object('durationMs', (random() * 2000)::integer), 1),
           ('image.metadata_extracted',
              jsonb_build_object('durationMs', (random() * 80)::integer), 2),
           ('image.analyzed', jsonb_build_object('durationMs', (random() * 3000)::integer,
              'provider', 'openai', 'model', 'gpt-4o-mini',
              'usage', jsonb_build_object('promptTokens', 100, 'completionTokens', 20,
                                          'totalTokens', 120)), 3),
           ('task.completed', jsonb_build_object('durationMs', (random() * 5000)::integer), 4)
         ) x (type, payload, ord)
        where t.id = any($1::uuid[])`,
      [tasks.map((t) => t.id)],
    );
  });
}

/** Median ms of `n` sequential calls after one warm-up. */
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

const t = await openTestDb();
try {
  const db = t.db;
  const app = createApiApp({
    db,
    verifier: new JwtVerifier({ secret: DEV_JWT_SECRET }),
    log: silentLogger,
  });
  const user = await signJwt({ role: "authenticated", sub: me }, DEV_JWT_SECRET);
  const service = await signJwt({ role: "service_role" }, DEV_JWT_SECRET);
  const stats = async (token: string) => {
    const res = await app.request("/api/stats", { headers: { authorization: `Bearer ${token}` } });
    if (res.status !== 200) throw new Error(`GET /stats ${res.status}: ${await res.text()}`);
    return await res.json();
  };
  let done = 0;
  for (const total of [1_000, 100_000]) {
    let t0 = performance.now();
    for (let from = done + 1; from <= total; from += 20_000) {
      await addTasks(db, from, Math.min(total, from + 19_999));
    }
    done = total;
    const loadMs = Math.round(performance.now() - t0);
    console.log(`${ENGINE} ${total} tasks loaded in ${loadMs} ms; rebuilding the rollups`);
    t0 = performance.now();
    const [{ counted }] = await db.query<{ counted: number }>(
      "select darkroom.rebuild_rollups()::integer as counted",
    );
    const rebuildMs = Math.round(performance.now() - t0);
    await db.query("analyze");
    const all = await stats(service);
    const sum = Object.values(all.tasks as Record<string, number>).reduce((a, b) => a + b, 0);
    console.log(
      `${ENGINE} ${total} tasks (${counted} events; load ${loadMs} ms, rebuild_rollups ` +
        `${rebuildMs} ms; /stats sees ${sum} tasks): GET /stats median user ` +
        `${await medianMs(10, () => stats(user))} ms, service_role ` +
        `${await medianMs(10, () => stats(service))} ms`,
    );
  }
} finally {
  await t.close();
}
