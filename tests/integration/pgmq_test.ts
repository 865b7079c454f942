/**
 * @module tests/integration/pgmq_test — the pgmq behaviour Darkroom relies on, on the engine this
 * run uses: our layer (local/sql/pgmq.sql) on PGlite, and on PostgreSQL the pgmq extension where
 * the server has it (as on Supabase; CI installs it), else our layer. One database for the file;
 * every test works on its own queue.
 */
import assert from "node:assert/strict";
import { ENGINE, openTestDb, type TestDb } from "../_helpers/db.ts";
import { installPgmqIfMissing, installSupabaseStandIns } from "../../local/bootstrap.ts";
import type { Queryable } from "../../shared/db.ts";

interface Message {
  msg_id: number;
  read_ct: number;
  enqueued_at: Date;
  vt: Date;
  message: Record<string, unknown>;
  headers: Record<string, unknown> | null;
}

interface Metrics {
  queue_name: string;
  queue_length: number;
  newest_msg_age_sec: number | null;
  oldest_msg_age_sec: number | null;
  total_messages: number;
  scrape_time: Date;
  queue_visible_length: number;
}

let t: TestDb;
let queueNo = 0;

Deno.test.beforeAll(async () => {
  t = await openTestDb("pgmq");
});

Deno.test.afterAll(async () => {
  await t?.close();
});

/** Connection pools live across tests (opened lazily by postgres.js): no per-test sanitizers. */
function test(
  name: string,
  fn: () => Promise<void>,
  options: { ignore?: boolean } = {},
): void {
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false, ...options });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A new, empty queue for one test. */
async function newQueue(db: Queryable = t.db): Promise<string> {
  const name = `q${++queueNo}_${crypto.randomUUID().slice(0, 8)}`;
  await db.query("select pgmq.create($1)", [name]);
  return name;
}

/**
 * jsonb parameters are passed as JS values, never as pre-serialised strings: postgres.js would
 * store a string as a JSON string scalar, PGlite would parse it.
 */
async function send(q: string, msg: unknown, db: Queryable = t.db): Promise<number> {
  const [row] = await db.query<{ send: number }>(
    "select * from pgmq.send($1, $2::jsonb)",
    [q, msg],
  );
  return row.send;
}

async function read(q: string, vt: number, qty: number, db: Queryable = t.db): Promise<Message[]> {
  return await db.query<Message>("select * from pgmq.read($1, $2::int, $3::int)", [q, vt, qty]);
}

async function columnsOf(table: string): Promise<string[]> {
  const rows = await t.db.query<{ column_name: string; data_type: string }>(
    `select column_name, data_type from information_schema.columns
      where table_schema = 'pgmq' and table_name = $1 order by ordinal_position`,
    [table],
  );
  return rows.map((r) => `${r.column_name} ${r.data_type}`);
}

async function count(table: string): Promise<number> {
  const [row] = await t.db.query<{ n: number }>(`select count(*)::int as n from pgmq.${table}`);
  return row.n;
}

test("pgmq.create() makes a queue and its archive; list_queues() and drop_queue() agree", async () => {
  const q = await newQueue();
  await t.db.query("select pgmq.create($1)", [q]); // a second create changes nothing

  assert.deepEqual(await columnsOf(`q_${q}`), [
    "msg_id bigint",
    "read_ct integer",
    "enqueued_at timestamp with time zone",
    "vt timestamp with time zone",
    "message jsonb",
    "headers jsonb",
  ]);
  assert.deepEqual(await columnsOf(`a_${q}`), [
    "msg_id bigint",
    "read_ct integer",
    "enqueued_at timestamp with time zone",
    "archived_at timestamp with time zone",
    "vt timestamp with time zone",
    "message jsonb",
    "headers jsonb",
  ]);

  const listed = await t.db.query<
    { queue_name: string; is_partitioned: boolean; is_unlogged: boolean; created_at: Date }
  >("select * from pgmq.list_queues()");
  const mine = listed.filter((r) => r.queue_name === q);
  assert.equal(mine.length, 1);
  assert.equal(mine[0].is_partitioned, false);
  assert.equal(mine[0].is_unlogged, false);
  assert.ok(mine[0].created_at instanceof Date);

  const [dropped] = await t.db.query<{ drop_queue: boolean }>("select pgmq.drop_queue($1)", [q]);
  assert.equal(dropped.drop_queue, true);
  const [again] = await t.db.query<{ drop_queue: boolean }>("select pgmq.drop_queue($1)", [q]);
  assert.equal(again.drop_queue, false);
  assert.deepEqual(await columnsOf(`q_${q}`), []);
  assert.deepEqual(await columnsOf(`a_${q}`), []);
  const after = await t.db.query<{ queue_name: string }>("select * from pgmq.list_queues()");
  assert.ok(!after.some((r) => r.queue_name === q));
});

test("pgmq.send() returns increasing ids and stores message and headers", async () => {
  const q = await newQueue();
  const a = await send(q, { n: 1 });
  const [b] = await t.db.query<{ send: number }>(
    "select * from pgmq.send($1, $2::jsonb, $3::jsonb)",
    [q, { n: 2 }, { trace: "t-1" }],
  );
  const [c] = await t.db.query<{ send: number }>(
    "select * from pgmq.send($1, $2::jsonb, $3::jsonb, $4::int)",
    [q, { n: 3 }, { trace: "t-2" }, 0],
  );
  assert.equal(typeof a, "number");
  assert.ok(b.send > a && c.send > b.send);

  const msgs = await read(q, 30, 10);
  assert.deepEqual(msgs.map((m) => m.msg_id), [a, b.send, c.send]);
  assert.deepEqual(msgs.map((m) => m.message), [{ n: 1 }, { n: 2 }, { n: 3 }]);
  assert.deepEqual(msgs.map((m) => m.headers), [null, { trace: "t-1" }, { trace: "t-2" }]);
  assert.ok(msgs[0].enqueued_at instanceof Date);
});

test("pgmq.send() with a delay keeps the message invisible until the delay passes", async () => {
  const q = await newQueue();
  const [delayed] = await t.db.query<{ send: number }>(
    "select * from pgmq.send($1, $2::jsonb, $3::int)",
    [q, { later: true }, 1],
  );
  // The timestamptz form: visible from a point in time, here an hour away.
  await t.db.query(
    "select * from pgmq.send($1, $2::jsonb, now() + interval '1 hour')",
    [q, { much: "later" }],
  );
  assert.deepEqual(await read(q, 30, 10), []);

  await sleep(1_100);
  const msgs = await read(q, 30, 10);
  assert.deepEqual(msgs.map((m) => m.msg_id), [delayed.send]);
  assert.deepEqual(msgs[0].message, { later: true });
});

test("pgmq.read() hides a message for its visibility timeout and increments read_ct", async () => {
  const q = await newQueue();
  const id = await send(q, { job: 1 });

  const [first] = await read(q, 1, 1);
  assert.equal(first.msg_id, id);
  assert.equal(first.read_ct, 1);
  assert.ok(first.vt.getTime() > Date.now() - 5_000);
  assert.deepEqual(await read(q, 1, 1), [], "hidden while its vt lasts");

  await sleep(1_100);
  const [second] = await read(q, 1, 1);
  assert.equal(second.msg_id, id, "visible again after vt");
  assert.equal(second.read_ct, 2);
});

test("pgmq.read() returns at most qty messages, oldest first, and filters by conditional", async () => {
  const q = await newQueue();
  const ids: number[] = [];
  for (let i = 0; i < 5; i++) ids.push(await send(q, { i, kind: i % 2 ? "odd" : "even" }));

  const two = await read(q, 30, 2);
  assert.deepEqual(two.map((m) => m.msg_id), ids.slice(0, 2));

  const odd = await t.db.query<Message>(
    "select * from pgmq.read($1, 30, 10, $2::jsonb)",
    [q, { kind: "odd" }],
  );
  assert.deepEqual(odd.map((m) => m.msg_id), [ids[3]]); // ids[1] is already hidden
  assert.deepEqual((await read(q, 30, 10)).map((m) => m.msg_id), [ids[2], ids[4]]);
});

test("pgmq.set_vt() moves a message's visibility and returns it", async () => {
  const q = await newQueue();
  const id = await send(q, { job: "retry" });
  await read(q, 3600, 1);
  assert.deepEqual(await read(q, 30, 1), []);

  const [now] = await t.db.query<Message>("select * from pgmq.set_vt($1, $2::bigint, 0)", [q, id]);
  assert.equal(now.msg_id, id);
  assert.equal(now.read_ct, 1, "set_vt does not count as a read");
  assert.deepEqual(now.message, { job: "retry" });
  const [visible] = await read(q, 30, 1);
  assert.equal(visible.msg_id, id);
  assert.equal(visible.read_ct, 2);

  await t.db.query("select * from pgmq.set_vt($1, $2::bigint, 0)", [q, id]);
  const [later] = await t.db.query<Message>("select * from pgmq.set_vt($1, $2::bigint, 3600)", [
    q,
    id,
  ]);
  assert.ok(later.vt.getTime() > Date.now() + 3_000_000);
  assert.deepEqual(await read(q, 30, 1), []);

  const missing = await t.db.query("select * from pgmq.set_vt($1, 999999, 10)", [q]);
  assert.deepEqual(missing, []);
});

test("pgmq.pop() returns the oldest visible message and deletes it", async () => {
  const q = await newQueue();
  const a = await send(q, { n: 1 });
  const b = await send(q, { n: 2 });
  await t.db.query("select * from pgmq.set_vt($1, $2::bigint, 3600)", [q, a]); // a is hidden

  const [popped] = await t.db.query<Message>("select * from pgmq.pop($1)", [q]);
  assert.equal(popped.msg_id, b);
  assert.equal(popped.read_ct, 0);
  assert.deepEqual(popped.message, { n: 2 });
  assert.equal(await count(`q_${q}`), 1);
  assert.deepEqual(await t.db.query("select * from pgmq.pop($1)", [q]), []);
});

test("pgmq.delete() removes one message (boolean) or an array (the ids that existed)", async () => {
  const q = await newQueue();
  const ids = [await send(q, { n: 1 }), await send(q, { n: 2 }), await send(q, { n: 3 })];

  const [one] = await t.db.query<{ delete: boolean }>(
    "select pgmq.delete($1, $2::bigint)",
    [q, ids[0]],
  );
  assert.equal(one.delete, true);
  const [gone] = await t.db.query<{ delete: boolean }>(
    "select pgmq.delete($1, $2::bigint)",
    [q, ids[0]],
  );
  assert.equal(gone.delete, false);

  const many = await t.db.query<{ delete: number }>(
    "select * from pgmq.delete($1, $2::bigint[])",
    [q, [ids[1], ids[2], 999999]],
  );
  assert.deepEqual(many.map((r) => r.delete).sort((x, y) => x - y), [ids[1], ids[2]]);
  assert.equal(await count(`q_${q}`), 0);
  assert.equal(await count(`a_${q}`), 0, "delete does not archive");
});

test("pgmq.archive() moves messages into pgmq.a_<name> with archived_at", async () => {
  const q = await newQueue();
  const [a, b, c] = [await send(q, { n: 1 }), await send(q, { n: 2 }), await send(q, { n: 3 })];
  await read(q, 30, 1); // a has been read once

  const [one] = await t.db.query<{ archive: boolean }>(
    "select pgmq.archive($1, $2::bigint)",
    [q, a],
  );
  assert.equal(one.archive, true);
  const [none] = await t.db.query<{ archive: boolean }>(
    "select pgmq.archive($1, $2::bigint)",
    [q, a],
  );
  assert.equal(none.archive, false);
  const many = await t.db.query<{ archive: number }>(
    "select * from pgmq.archive($1, $2::bigint[])",
    [q, [b, c, 999999]],
  );
  assert.deepEqual(many.map((r) => r.archive).sort((x, y) => x - y), [b, c]);

  assert.equal(await count(`q_${q}`), 0);
  const archived = await t.db.query<Message & { archived_at: Date }>(
    `select * from pgmq.a_${q} order by msg_id`,
  );
  assert.deepEqual(archived.map((r) => r.msg_id), [a, b, c]);
  assert.deepEqual(archived.map((r) => r.read_ct), [1, 0, 0]);
  assert.deepEqual(archived[0].message, { n: 1 });
  for (const r of archived) assert.ok(r.archived_at instanceof Date);
});

test("pgmq.send_batch() sends every message in order, with headers and delay", async () => {
  const q = await newQueue();
  const ids = await t.db.query<{ send_batch: number }>(
    `select * from pgmq.send_batch($1, array(select jsonb_array_elements($2::jsonb)))`,
    [q, [{ n: 1 }, { n: 2 }, { n: 3 }]],
  );
  assert.equal(ids.length, 3);
  const withHeaders = await t.db.query<{ send_batch: number }>(
    `select * from pgmq.send_batch($1,
        array(select jsonb_array_elements($2::jsonb)),
        array(select jsonb_array_elements($3::jsonb)))`,
    [q, [{ n: 4 }, { n: 5 }], [{ h: 4 }, { h: 5 }]],
  );
  const delayed = await t.db.query<{ send_batch: number }>(
    `select * from pgmq.send_batch($1, array(select jsonb_array_elements($2::jsonb)), 3600)`,
    [q, [{ n: 6 }]],
  );
  assert.equal(delayed.length, 1);

  const msgs = await read(q, 30, 10);
  assert.deepEqual(msgs.map((m) => m.msg_id), [...ids, ...withHeaders].map((r) => r.send_batch));
  assert.deepEqual(msgs.map((m) => m.message), [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }]);
  assert.deepEqual(msgs.map((m) => m.headers), [null, null, null, { h: 4 }, { h: 5 }]);
});

test("pgmq.metrics() and metrics_all() report lengths, ages and totals", async () => {
  const q = await newQueue();
  const [empty] = await t.db.query<Metrics>("select * from pgmq.metrics($1)", [q]);
  assert.equal(empty.queue_name, q);
  assert.equal(empty.queue_length, 0);
  assert.equal(empty.queue_visible_length, 0);
  assert.equal(empty.total_messages, 0);
  assert.equal(empty.newest_msg_age_sec, null);
  assert.equal(empty.oldest_msg_age_sec, null);

  const a = await send(q, { n: 1 });
  await send(q, { n: 2 });
  await send(q, { n: 3 });
  await read(q, 3600, 1);
  await t.db.query("select pgmq.delete($1, $2::bigint)", [q, a]);

  const [m] = await t.db.query<Metrics>("select * from pgmq.metrics($1)", [q]);
  assert.deepEqual(Object.keys(m), [
    "queue_name",
    "queue_length",
    "newest_msg_age_sec",
    "oldest_msg_age_sec",
    "total_messages",
    "scrape_time",
    "queue_visible_length",
  ]);
  assert.equal(m.queue_length, 2);
  assert.equal(m.queue_visible_length, 2);
  assert.equal(m.total_messages, 3, "every message ever sent");
  assert.equal(typeof m.newest_msg_age_sec, "number");
  assert.ok(m.oldest_msg_age_sec! >= m.newest_msg_age_sec!);
  assert.ok(m.scrape_time instanceof Date);

  await read(q, 3600, 1);
  const [hidden] = await t.db.query<Metrics>("select * from pgmq.metrics($1)", [q]);
  assert.equal(hidden.queue_length, 2);
  assert.equal(hidden.queue_visible_length, 1);

  const all = await t.db.query<Metrics>("select * from pgmq.metrics_all()");
  const mine = all.find((r) => r.queue_name === q);
  assert.ok(mine);
  assert.equal(mine.queue_length, 2);
  const [{ n }] = await t.db.query<{ n: number }>("select count(*)::int as n from pgmq.meta");
  assert.equal(all.length, n, "one row per queue");
});

test("pgmq.purge_queue() deletes every message and returns how many", async () => {
  const q = await newQueue();
  for (let i = 0; i < 4; i++) await send(q, { i });
  await t.db.query("select pgmq.archive($1, $2::bigint)", [q, await send(q, { i: 4 })]);

  const [purged] = await t.db.query<{ purge_queue: number }>("select pgmq.purge_queue($1)", [q]);
  assert.equal(purged.purge_queue, 4);
  assert.equal(await count(`q_${q}`), 0);
  assert.equal(await count(`a_${q}`), 1, "the archive is left alone");
  const [again] = await t.db.query<{ purge_queue: number }>("select pgmq.purge_queue($1)", [q]);
  assert.equal(again.purge_queue, 0);
});

test("pgmq.read() never gives the same message to two concurrent readers", async () => {
  const q = await newQueue();
  const total = 300;
  const sent = await t.db.query<{ send_batch: number }>(
    `select * from pgmq.send_batch($1, array(select jsonb_build_object('i', g)
       from generate_series(1, $2::int) g))`,
    [q, total],
  );
  assert.equal(sent.length, total);

  // On PostgreSQL: two separate pools, several connections each, all reading at once.
  const readers = [t.connect(), t.connect()];
  const seen: number[] = [];
  await Promise.all(
    readers.flatMap((db) =>
      Array.from({ length: 4 }, async () => {
        for (;;) {
          const got = await read(q, 60, 3, db);
          if (got.length === 0) return;
          for (const m of got) seen.push(m.msg_id);
        }
      })
    ),
  );
  assert.equal(new Set(seen).size, seen.length, "no message delivered twice");
  assert.deepEqual(
    seen.sort((a, b) => a - b),
    sent.map((r) => r.send_batch).sort((a, b) => a - b),
  );
});

test(
  "pgmq.read() skips a message another transaction holds instead of waiting for it",
  async () => {
    const q = await newQueue();
    const a = await send(q, { n: 1 });
    const b = await send(q, { n: 2 });
    const other = t.connect();

    await t.db.transaction(async (tx) => {
      const [mine] = await read(q, 60, 1, tx);
      assert.equal(mine.msg_id, a);
      // a is locked by this open transaction: the other reader must skip it, not block on it.
      // A reader that waits for the lock would never return while this transaction is open:
      // give up after 2 s (throwing rolls the transaction back, which releases it).
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("the second reader blocked on a locked row")),
          2_000,
        );
      });
      try {
        const [theirs] = await Promise.race([read(q, 60, 1, other), timeout]);
        assert.equal(theirs.msg_id, b);
      } finally {
        clearTimeout(timer);
      }
    });
  },
  { ignore: ENGINE === "pglite" },
); // one PGlite session: a second reader would wait for the tx

test("pgmq.read_with_poll() returns as soon as a message arrives", async () => {
  const q = await newQueue();
  const poller = t.connect();
  const started = performance.now();
  const polling = poller.query<Message>(
    "select * from pgmq.read_with_poll($1, 30, 1, 5, 50)",
    [q],
  );
  await sleep(300);
  const id = await send(q, { woke: true });
  const got = await polling;
  const elapsed = performance.now() - started;
  assert.deepEqual(got.map((m) => m.msg_id), [id]);
  assert.equal(got[0].read_ct, 1);
  assert.ok(elapsed >= 250 && elapsed < 3_000, `returned after ${Math.round(elapsed)} ms`);

  // And with nothing to read it gives up after max_poll_seconds.
  const t0 = performance.now();
  const none = await poller.query("select * from pgmq.read_with_poll($1, 30, 1, 1, 100)", [q]);
  const waited = performance.now() - t0;
  assert.deepEqual(none, []);
  assert.ok(waited >= 900 && waited < 3_000, `gave up after ${Math.round(waited)} ms`);
}, { ignore: ENGINE === "pglite" }); // it sleeps inside the one PGlite session

test("pgmq rejects queue names that could inject SQL, and overlong ones", async () => {
  // What the pgmq extension and our layer both refuse; our layer refuses more (dashes, spaces),
  // which Darkroom does not rely on.
  const bad = ["semi;colon", `x'; drop table pgmq.meta; --`, "a".repeat(48)];
  for (const name of bad) {
    await assert.rejects(
      t.db.query("select pgmq.create($1)", [name]),
      /queue name/,
      `create(${JSON.stringify(name)})`,
    );
  }
  await assert.rejects(
    t.db.query("select * from pgmq.send($1, '{}'::jsonb)", ["x; drop table pgmq.meta"]),
    /queue name/,
  );
  await assert.rejects(t.db.query("select * from pgmq.read($1, 1, 1)", ["a.b"]));

  // 47 characters is the longest name pgmq allows.
  const longest = `l${queueNo++}_`.padEnd(47, "x");
  await t.db.query("select pgmq.create($1)", [longest]);
  assert.equal(typeof (await send(longest, { ok: true })), "number");
  // The catalogue survived every attempt.
  assert.ok((await t.db.query("select * from pgmq.list_queues()")).length > 0);
  // A queue that does not exist is an error, as in pgmq (relation does not exist).
  await assert.rejects(t.db.query("select * from pgmq.send('no_such_queue', '{}'::jsonb)"));
});

test("pgmq privileges: anon and authenticated can use no queue", async () => {
  // service_role is granted Darkroom's queues by a migration (task_functions_test runs the
  // worker transitions as service_role); a queue made later is nobody's but its owner's.
  const q = await newQueue();
  for (const role of ["anon", "authenticated", "service_role"]) {
    await assert.rejects(
      t.db.transaction(async (tx) => {
        await tx.query(`set local role ${role}`);
        await send(q, { from: role }, tx);
      }),
      /permission denied/,
      role,
    );
  }
});

test("pgmq.sql (our layer) is idempotent: running it again keeps queues and messages", async () => {
  // Our layer on its own database, whichever engine: where the pgmq extension is available the
  // shared database above uses the extension instead.
  const own = await openTestDb("none");
  try {
    await installSupabaseStandIns(own.db);
    const layer = await Deno.readTextFile(new URL("../../local/sql/pgmq.sql", import.meta.url));
    await own.db.exec(layer);
    const q = await newQueue(own.db);
    const id = await send(q, { keep: true }, own.db);
    await own.db.exec(layer);
    assert.equal(
      await installPgmqIfMissing(own.db),
      "compat",
      "our layer is recognised, not reinstalled",
    );
    const [m] = await read(q, 30, 1, own.db);
    assert.equal(m.msg_id, id);
    assert.deepEqual(m.message, { keep: true });
    assert.ok((await send(q, { after: true }, own.db)) > id);
  } finally {
    await own.close();
  }
});
