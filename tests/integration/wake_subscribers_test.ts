// The wake-up of subscriber workers on an events insert (darkroom._wake_subscribers): nothing
// where pg_net and Vault are missing; with them (stand-ins of net.http_post and
// vault.decrypted_secrets here), one POST per matching subscriber per transaction, to
// <project_url>/functions/v1/<worker_function> with the worker key, and never a failed insert.
import assert from "node:assert/strict";
import type { Queryable } from "../../shared/db.ts";
import { createTask } from "../../shared/tasks.ts";
import { openTestDb } from "../_helpers/db.ts";

const STAND_INS = `
  create schema if not exists net;
  create table net.calls (id bigserial primary key, url text, headers jsonb);
  create or replace function net.http_post(url text, headers jsonb, body jsonb,
                                           timeout_milliseconds integer) returns bigint
  language plpgsql as $$
  declare v bigint;
  begin
    if url like '%fail%' then raise exception 'pg_net is down'; end if;
    insert into net.calls (url, headers) values (url, headers) returning id into v;
    return v;
  end $$;
  create schema if not exists vault;
  create table vault.decrypted_secrets (name text primary key, decrypted_secret text);
  insert into vault.decrypted_secrets values
    ('project_url', 'https://proj.supabase.co'), ('worker_key', 'sb_secret_test');`;

async function publish(db: Queryable, taskId: string, type: string, payload: unknown) {
  await db.query(
    `insert into public.events (event_type, task_id, trace_id, owner, source, payload)
     select $2, t.id, t.trace_id, t.owner, 'test', $3::jsonb from public.tasks t where t.id = $1`,
    [taskId, type, JSON.stringify(payload)],
  );
}

const calls = (db: Queryable) =>
  db.query<{ url: string; auth: string }>(
    "select url, headers ->> 'Authorization' as auth from net.calls order by id",
  );

Deno.test({
  name: "wake_subscribers: no pg_net, no wake; with it, one POST per subscriber per transaction",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const tdb = await openTestDb();
    const db = tdb.db;
    try {
      await t.step("without pg_net and Vault an insert wakes nothing and succeeds", async () => {
        const task = await createTask(db, { imageUrl: "https://e.com/a.jpg" });
        await publish(db, task.taskId, "task.cancelled", { stage: null });
        const [{ n }] = await db.query<{ n: number }>(
          "select count(*)::integer as n from public.events where task_id = $1",
          [task.taskId],
        );
        assert.equal(n, 2);
      });

      await db.exec(STAND_INS);
      const base = "https://proj.supabase.co/functions/v1/";

      await t.step("several inserts in one transaction wake each subscriber once", async () => {
        await db.transaction(async (tx) => {
          const task = await createTask(tx, { imageUrl: "https://e.com/b.jpg" });
          await publish(tx, task.taskId, "task.cancelled", { stage: null });
          await publish(tx, task.taskId, "task.cancelled", { stage: null });
        });
        assert.deepEqual(await calls(db), [
          { url: `${base}analytics-worker`, auth: "Bearer sb_secret_test" },
          { url: `${base}notification-worker`, auth: "Bearer sb_secret_test" },
        ]);
      });

      await t.step(
        "the next transaction wakes again, only the subscribers it reaches",
        async () => {
          await db.exec("truncate net.calls");
          const task = await createTask(db, { imageUrl: "https://e.com/c.jpg" });
          assert.deepEqual((await calls(db)).map((c) => c.url), [`${base}analytics-worker`]);
          await publish(db, task.taskId, "task.completed", {
            imageId: crypto.randomUUID(),
            status: "completed",
            durationMs: 1,
          });
          assert.deepEqual((await calls(db)).map((c) => c.url), [
            `${base}analytics-worker`,
            `${base}analytics-worker`,
            `${base}notification-worker`,
          ]);
        },
      );

      await t.step("a failing wake leaves the insert and its queue messages", async () => {
        await db.exec("truncate net.calls");
        await db.query(
          "update vault.decrypted_secrets set decrypted_secret = 'https://fail' where name = 'project_url'",
        );
        const task = await createTask(db, { imageUrl: "https://e.com/d.jpg" });
        const [{ n }] = await db.query<{ n: number }>(
          "select count(*)::integer as n from public.events where task_id = $1",
          [task.taskId],
        );
        assert.equal(n, 1);
        assert.deepEqual(await calls(db), []);
      });
    } finally {
      await tdb.close();
    }
  },
});
