// Regression tests for the findings of the attack on loopback (issue 6) that SQL alone shows:
// each fails on the code as it was before the fix. The findings that need the whole platform
// (4, 6, 7, 8) are in tests/e2e/security_findings_test.ts; the decoder findings (1–3) in
// decoder_bounds_test.ts and e2e/health_under_bombs_test.ts.
import assert from "node:assert/strict";
import { asRole, openTestDb } from "../_helpers/db.ts";

Deno.test("finding 5: anon and authenticated can use no sequence (setval cannot rewind events)", async () => {
  const t = await openTestDb();
  try {
    const err = await asRole(
      t.db,
      "authenticated",
      { sub: crypto.randomUUID() },
      (tx) => tx.query("select setval('public.events_seq_seq', 1)"),
    ) as { code?: string };
    assert.equal(err.code, "42501", "setval is refused");
    const reachable = await t.db.query<{ role: string; seq: string }>(
      `select r as role, c.relname as seq
         from pg_class c join pg_namespace n on n.oid = c.relnamespace,
              unnest(array['anon', 'authenticated']) as r
        where c.relkind = 'S' and n.nspname = 'public'
          and has_sequence_privilege(r, c.oid, 'USAGE,SELECT,UPDATE')`,
    );
    assert.deepEqual(reachable, [], "no sequence in public is granted to a client role");
  } finally {
    await t.close();
  }
});

/**
 * Every object in public and darkroom that anon or authenticated can reach, each with the rule
 * that guards it. A new grant (or a Supabase default grant a migration forgot to revoke) fails this test
 * until it is reviewed and listed here with its reason.
 */
const CLIENT_REACHABLE: Record<string, string> = {
  "public table deliveries:select": "RLS: rows of the caller's own tasks",
  "public table events:select":
    "RLS: rows of the caller's own tasks (anon: the ownerless task it names)",
  "public table image_tags:select": "RLS: rows of the caller's own images",
  "public table images:select":
    "RLS: rows of the caller's own tasks (anon: the ownerless task it names)",
  "public table tasks:select": "RLS: the caller's own tasks (anon: the ownerless task it names)",
  // darkroom is not exposed through the Data API: these are reached only through the api
  // function, which runs them as the caller's role after its own checks.
  "darkroom function cancel_task(p_task_id uuid)":
    "cancels only the caller's own task (may_act_on), or an ownerless one it names",
  "darkroom function create_task(p_image_url text, p_callback_url text, p_options jsonb, p_idempotency_key text, p_owner uuid)":
    "owner forced to auth.uid() for clients; Idempotency-Key refused for anon; check constraints on the row",
  "darkroom function create_tasks(p_tasks jsonb, p_owner uuid)":
    "create_task for each item, same rules",
  "darkroom function requested_task_id()":
    "reads the caller's own request setting; used by the RLS policies",
  "darkroom function stats()":
    "GET /stats: the rollups of the caller's own tasks (owner = auth.uid(); none for the bare anon key); every owner's only for the service_role claim",
  "darkroom function ai_stats(p_settings jsonb)":
    "GET /stats aiSpend: the caller's own AI calls and budget use (owner = auth.uid(); none for the bare anon key); every owner's and the provider buckets only for the service_role claim",
  "darkroom function retry_task(p_task_id uuid)":
    "retries only the caller's own failed task, or an ownerless one it names",
};

Deno.test("every object anon and authenticated can reach is listed with its guard; the exposed schema has tables only", async () => {
  const t = await openTestDb();
  try {
    const rows = await t.db.query<{ role: string; what: string }>(
      `select r as role, n.nspname || ' function ' || p.proname || '(' ||
              pg_get_function_identity_arguments(p.oid) || ')' as what
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace,
              unnest(array['anon', 'authenticated']) as r
        where n.nspname in ('public', 'darkroom') and has_function_privilege(r, p.oid, 'EXECUTE')
          and has_schema_privilege(r, n.oid, 'USAGE')
       union all
       select r, n.nspname || ' ' ||
              case c.relkind when 'S' then 'sequence ' when 'v' then 'view ' else 'table ' end ||
              c.relname || ':' || concat_ws(',',
                case when has_table_privilege(r, c.oid, 'SELECT') then 'select' end,
                case when has_table_privilege(r, c.oid, 'INSERT') then 'insert' end,
                case when has_table_privilege(r, c.oid, 'UPDATE') then 'update' end,
                case when has_table_privilege(r, c.oid, 'DELETE') then 'delete' end)
         from pg_class c join pg_namespace n on n.oid = c.relnamespace,
              unnest(array['anon', 'authenticated']) as r
        where n.nspname in ('public', 'darkroom') and c.relkind in ('r', 'v', 'm', 'p', 'S')
          and has_table_privilege(r, c.oid, 'SELECT,INSERT,UPDATE,DELETE')
       order by 1, 2`,
    );
    for (const role of ["anon", "authenticated"]) {
      const reachable = rows.filter((r) => r.role === role).map((r) => r.what).sort();
      assert.deepEqual(reachable, Object.keys(CLIENT_REACHABLE).sort(), `${role} reaches`);
    }
    // The schemas config.toml exposes through the Data API hold no callable function at all.
    const toml = await Deno.readTextFile(new URL("../../supabase/config.toml", import.meta.url));
    const exposed = JSON.parse(/^schemas\s*=\s*(\[.*\])/m.exec(toml)![1]) as string[];
    assert.ok(!exposed.includes("darkroom"), "darkroom is not exposed");
    for (const entry of Object.keys(CLIENT_REACHABLE)) {
      const schema = entry.split(" ")[0];
      if (exposed.includes(schema)) assert.match(entry, /^\w+ table \w+:select$/, entry);
    }
  } finally {
    await t.close();
  }
});
