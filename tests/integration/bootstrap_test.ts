// bootstrapDatabase(): the stand-ins, pgmq only where missing, every migration once.
import assert from "node:assert/strict";
import { openTestDb } from "../_helpers/db.ts";
import {
  bootstrapDatabase,
  installPgmqIfMissing,
  installSupabaseStandIns,
  readMigrations,
} from "../../local/bootstrap.ts";

Deno.test({
  name: "bootstrapDatabase() applies every migration once; a second run changes nothing",
  async fn() {
    const t = await openTestDb("none");
    try {
      const migrations = await readMigrations();
      const first = await bootstrapDatabase(t.db);
      // The pgmq extension where the server has it (as on Supabase), else our layer.
      assert.ok(["extension", "compat"].includes(first.pgmq), first.pgmq);
      assert.deepEqual(first.applied, migrations.map((m) => m.version));
      const schema = () =>
        t.db.query<{ n: string }>(
          `select table_schema || '.' || table_name as n from information_schema.tables
            where table_schema in ('public', 'pgmq') order by 1`,
        );
      const before = await schema();
      const second = await bootstrapDatabase(t.db);
      assert.deepEqual(second, { pgmq: first.pgmq, applied: [] });
      assert.deepEqual(await schema(), before);
      const recorded = await t.db.query<{ version: string; name: string }>(
        "select version, name from supabase_migrations.schema_migrations order by version",
      );
      assert.deepEqual(recorded, migrations.map(({ version, name }) => ({ version, name })));
    } finally {
      await t.close();
    }
  },
});

Deno.test({
  name: "installPgmqIfMissing() uses a pgmq schema someone else installed as it is",
  async fn() {
    const t = await openTestDb("none");
    try {
      await installSupabaseStandIns(t.db);
      await t.db.exec(`
        create schema pgmq;
        create function pgmq.marker() returns text language sql as $$ select 'theirs' $$;`);
      assert.equal(await installPgmqIfMissing(t.db), "schema");
      const [row] = await t.db.query<{ m: string }>("select pgmq.marker() as m");
      assert.equal(row.m, "theirs");
      const fns = await t.db.query(
        `select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
          where n.nspname = 'pgmq' and p.proname = 'send'`,
      );
      assert.equal(fns.length, 0, "our layer was not installed over theirs");
    } finally {
      await t.close();
    }
  },
});

Deno.test({
  name: "applyMigrations() rolls a failing migration back whole and names it",
  async fn() {
    const t = await openTestDb("none");
    try {
      const { applyMigrations } = await import("../../local/bootstrap.ts");
      await assert.rejects(
        applyMigrations(t.db, [
          { version: "1", name: "ok", sql: "create table a (x int);" },
          { version: "2", name: "broken", sql: "create table b (x int); select nope();" },
        ]),
        /Cannot apply migration 2_broken/,
      );
      const tables = await t.db.query<{ t: string }>(
        "select table_name as t from information_schema.tables where table_schema = 'public' order by 1",
      );
      assert.deepEqual(tables.map((r) => r.t), ["a"]);
      const done = await t.db.query<{ version: string }>(
        "select version from supabase_migrations.schema_migrations",
      );
      assert.deepEqual(done.map((r) => r.version), ["1"]);
    } finally {
      await t.close();
    }
  },
});
