/**
 * @module tests/integration/housekeeping_test — the schedules-and-housekeeping migration on both
 * engines: darkroom.housekeep() trims archived queue messages (and pg_cron's run history where
 * that table exists) older than the retention, and the `images` bucket is made where Supabase
 * Storage's `storage.buckets` exists, once, however often the migrations are applied.
 *
 * pg_cron itself is not exercised: it loads only through shared_preload_libraries (a server
 * restart), and pg_net and Vault, which the schedules also need, are Supabase's alone. The
 * run-history branch of housekeep() is tested on a stand-in `cron.job_run_details`.
 */
import assert from "node:assert/strict";
import { openTestDb, type TestDb } from "../_helpers/db.ts";
import { bootstrapDatabase } from "../../local/bootstrap.ts";
import type { Queryable } from "../../shared/db.ts";

/** The housekeeping tests share one bootstrapped database; the bucket tests make their own. */
let shared: TestDb;

Deno.test.beforeAll(async () => {
  shared = await openTestDb("all");
});

Deno.test.afterAll(async () => {
  await shared?.close();
});

/** Connection pools live across tests (opened lazily by postgres.js): no sanitizers. */
function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
}

/** Archives a new message in `queue`, as archived `age` ago; returns its id. */
async function archivedMessage(db: Queryable, queue: string, age: string): Promise<number> {
  const [{ id }] = await db.query<{ id: number }>(
    "select pgmq.send($1, $2::jsonb)::integer as id",
    [queue, JSON.stringify({ age })],
  );
  await db.query("select pgmq.archive($1, $2::bigint)", [queue, id]);
  await db.query(
    `update pgmq.${"a_" + queue} set archived_at = now() - $1::interval where msg_id = $2`,
    [age, id],
  );
  return id;
}

/** The ids left in `queue`'s archive, ascending. */
async function archived(db: Queryable, queue: string): Promise<number[]> {
  const rows = await db.query<{ id: number }>(
    `select msg_id::integer as id from pgmq.${"a_" + queue} order by msg_id`,
  );
  return rows.map((r) => r.id);
}

async function housekeep(db: Queryable, retention?: string): Promise<number> {
  const [{ n }] = retention === undefined
    ? await db.query<{ n: number }>("select darkroom.housekeep()::integer as n")
    : await db.query<{ n: number }>("select darkroom.housekeep($1::interval)::integer as n", [
      retention,
    ]);
  return n;
}

test("housekeep() deletes archived messages older than the retention setting, or its argument", async () => {
  const t = shared;
  const queues = (await t.db.query<{ queue: string }>(
    "select queue from darkroom.worker_queues order by position",
  )).map((r) => r.queue);
  assert.ok(queues.length >= 3, `queues: ${queues}`);
  const [{ value }] = await t.db.query<{ value: string }>(
    "select value from darkroom.settings where key = 'retention'",
  );
  assert.equal(value, "7 days");

  const ids: Record<string, number[]> = {};
  for (const q of queues) {
    ids[q] = [];
    for (const age of ["10 days", "3 days", "2 hours", "0 seconds"]) {
      ids[q].push(await archivedMessage(t.db, q, age));
    }
    // A live message is the queue's, never the housekeeper's.
    await t.db.query("select pgmq.send($1, '{}'::jsonb)", [q]);
  }
  const left = async () =>
    Object.fromEntries(await Promise.all(queues.map(async (q) => [q, await archived(t.db, q)])));
  const expect = (from: number) => Object.fromEntries(queues.map((q) => [q, ids[q].slice(from)]));

  // The setting (7 days): only the 10-day-old archive goes, in every queue.
  assert.equal(await housekeep(t.db), queues.length);
  assert.deepEqual(await left(), expect(1));
  assert.equal(await housekeep(t.db), 0, "a second run finds nothing more");

  // An operator shortens the retention: the setting is read at each call.
  await t.db.query("update darkroom.settings set value = '2 days' where key = 'retention'");
  assert.equal(await housekeep(t.db), queues.length);
  assert.deepEqual(await left(), expect(2));

  // An explicit argument wins over the setting; what is younger stays.
  assert.equal(await housekeep(t.db, "1 hour"), queues.length);
  assert.deepEqual(await left(), expect(3));

  for (const q of queues) {
    const [{ n }] = await t.db.query<{ n: number }>(
      `select count(*)::integer as n from pgmq.${"q_" + q}`,
    );
    assert.equal(n, 1, `${q}: the live message is untouched`);
  }
});

test("housekeep() trims pg_cron's run history where cron.job_run_details exists", async () => {
  const t = shared;
  // The columns of pg_cron's table that housekeep() reads; pg_cron itself cannot load here.
  await t.db.exec(`
      create schema cron;
      create table cron.job_run_details (
        jobid bigint,
        runid bigserial primary key,
        status text,
        start_time timestamptz,
        end_time timestamptz
      );
      insert into cron.job_run_details (jobid, status, start_time, end_time) values
        (1, 'succeeded', now() - interval '9 days', now() - interval '9 days'),
        (1, 'succeeded', now() - interval '6 days', now() - interval '6 days'),
        (1, 'running', now() - interval '30 days', null);`);
  const runs = async () =>
    (await t.db.query<{ status: string }>(
      "select status from cron.job_run_details order by runid",
    )).map((r) => r.status);

  // Without the setting, the retention falls back to 7 days.
  const [setting] = await t.db.query<{ value: string }>(
    "delete from darkroom.settings where key = 'retention' returning value",
  );
  try {
    assert.equal(await housekeep(t.db), 1);
    assert.deepEqual(await runs(), ["succeeded", "running"], "a run still going is kept");
    assert.equal(await housekeep(t.db, "5 days"), 1);
    assert.deepEqual(await runs(), ["running"]);
  } finally {
    await t.db.query("insert into darkroom.settings (key, value) values ('retention', $1)", [
      setting.value,
    ]);
    await t.db.exec("drop schema cron cascade");
  }
});

test("housekeep() is service_role's and the database owner's only", async () => {
  const t = shared;
  const as = (role: string) =>
    t.db.transaction(async (tx) => {
      await tx.query(`set local role ${role}`);
      return await housekeep(tx);
    });
  assert.equal(typeof await as("service_role"), "number");
  for (const role of ["anon", "authenticated"]) {
    await assert.rejects(as(role), /permission denied/, role);
  }
});

/** The columns of Supabase Storage's storage.buckets (supabase/storage migrations). */
const STORAGE_BUCKETS = `
  create schema storage;
  create table storage.buckets (
    id text primary key,
    name text not null,
    owner uuid,
    owner_id text,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    public boolean default false,
    avif_autodetection boolean default false,
    file_size_limit bigint,
    allowed_mime_types text[]
  );
  create unique index bname on storage.buckets using btree (name);`;

interface Bucket {
  id: string;
  name: string;
  public: boolean;
  file_size_limit: string | null;
  allowed_mime_types: string[] | null;
  created_at: string;
}

const buckets = (db: Queryable) =>
  db.query<Bucket>(
    `select id, name, public, file_size_limit::text as file_size_limit, allowed_mime_types,
            created_at::text as created_at
       from storage.buckets order by id`,
  );

test("housekeep() trims old subscriber receipts and analytics minutes, keeping hours", async () => {
  const db = shared.db;
  const [{ id: taskId }] = await db.query<{ id: string }>(
    "insert into public.tasks (image_url) values ('https://e.com/h.jpg') returning id",
  );
  const events = await db.query<{ id: string }>(
    `insert into public.events (event_type, task_id, trace_id, source)
     select 'task.cancelled', $1, gen_random_uuid(), 'test' from generate_series(1, 2)
     returning id`,
    [taskId],
  );
  await db.query(
    `insert into darkroom.event_receipts (subscription, event_id, status, attempts, updated_at)
     values ('tag_indexer', $1, 'done', 1, now() - interval '30 days'),
            ('tag_indexer', $2, 'done', 1, now())`,
    [events[0].id, events[1].id],
  );
  await db.query(
    `insert into darkroom.analytics_counts (period, period_start, owner, dimension, value, n)
     values ('minute', now() - interval '30 days', null, 'event_type', 'x.old', 1),
            ('hour', now() - interval '30 days', null, 'event_type', 'x.old', 1),
            ('minute', now() - interval '90 minutes', null, 'event_type', 'x.recent', 1)`,
  );
  await housekeep(db);
  const receipts = await db.query<{ event_id: string }>(
    "select event_id::text from darkroom.event_receipts where event_id = any($1::uuid[])",
    [events.map((e) => e.id)],
  );
  assert.deepEqual(receipts.map((r) => r.event_id), [events[1].id]);
  const left = await db.query<{ period: string; value: string }>(
    `select period, value from darkroom.analytics_counts where value like 'x.%'
      order by period, value`,
  );
  assert.deepEqual(left, [
    { period: "hour", value: "x.old" },
    { period: "minute", value: "x.recent" },
  ]);
  await housekeep(db, "1 hour");
  const minutes = await db.query(
    "select 1 from darkroom.analytics_counts where value = 'x.recent' and period = 'minute'",
  );
  assert.equal(minutes.length, 1, "never a minute of the last two hours, whatever the retention");
});

test("the migrations make the private images bucket where storage.buckets exists, once", async () => {
  const t = await openTestDb("none");
  try {
    await t.db.exec(STORAGE_BUCKETS);
    const first = await bootstrapDatabase(t.db);
    assert.ok(first.applied.length > 0);
    const made = await buckets(t.db);
    assert.equal(made.length, 1);
    const { created_at: _, ...images } = made[0];
    assert.deepEqual(images, {
      id: "images",
      name: "images",
      public: false,
      file_size_limit: String(20 * 1024 * 1024),
      allowed_mime_types: [
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "image/tiff",
        "image/heic",
        "image/heif",
        "image/avif",
        "image/bmp",
      ],
    });

    // Applying the migrations again changes nothing.
    const second = await bootstrapDatabase(t.db);
    assert.deepEqual(second.applied, []);
    assert.deepEqual(await buckets(t.db), made);
  } finally {
    await t.close();
  }
});

test("a bucket named images made before the migrations (dashboard, config.toml) is left as it is", async () => {
  const t = await openTestDb("none");
  try {
    await t.db.exec(`${STORAGE_BUCKETS}
      insert into storage.buckets (id, name, public, file_size_limit)
      values ('images', 'images', false, 1048576);`);
    const before = await buckets(t.db);
    await bootstrapDatabase(t.db);
    assert.deepEqual(await buckets(t.db), before);
  } finally {
    await t.close();
  }
});

test("without Supabase Storage the migrations make no storage schema", async () => {
  const t = shared;
  const [row] = await t.db.query<{ absent: boolean }>(
    "select to_regnamespace('storage') is null as absent",
  );
  assert.equal(row.absent, true);
});
