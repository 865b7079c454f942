/**
 * @module tests/integration/sql_lint_test — plpgsql_check over every PL/pgSQL function the
 * migrations make (schemas darkroom and public; pgmq is not ours), on a fresh database: a typo in
 * a branch no test reaches fails here, not in production (STYLE 13a).
 *
 * PostgreSQL only, where the server has the extension (Debian `postgresql-15-plpgsql-check`,
 * which .ci/run installs; Supabase ships the same one). PGlite 0.5.17 ships no plpgsql_check
 * among its extensions, so the file is ignored there.
 *
 * Every finding fails the test (errors, warnings, extra, performance and security warnings)
 * unless ACCEPTED lists it for that function, with the reason. An accepted finding that no
 * longer occurs (where its condition holds) fails too, so the list stays true.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { ENGINE, openTestDb } from "../_helpers/db.ts";
import type { Queryable } from "../../shared/db.ts";

/** One row of plpgsql_check_function_tb, with the function it is about. */
interface Finding {
  fn: string;
  level: string;
  sqlstate: string;
  lineno: number | null;
  message: string;
  detail: string | null;
  query: string | null;
}

/** A finding accepted for one function, and why. */
interface Accepted {
  /** regprocedure text, e.g. `darkroom.housekeep(interval)`. */
  fn: string;
  level: string;
  message: string;
  detail?: string;
  /** A SQL boolean: the finding is accepted (and expected) only where this holds. */
  when?: string;
  reason: string;
}

const ACCEPTED: Accepted[] = [
  {
    fn: "darkroom.invoke_worker(text,text)",
    level: "error",
    message: 'relation "vault.decrypted_secrets" does not exist',
    when: "to_regclass('vault.decrypted_secrets') is null",
    reason: "Supabase Vault exists only on Supabase; the function runs only from the pg_cron " +
      "schedule, which the migration makes only where Vault, pg_cron and pg_net are",
  },
  {
    fn: "darkroom.invoke_worker(text,text)",
    level: "error",
    message: 'schema "net" does not exist',
    when: "to_regnamespace('net') is null",
    reason: "pg_net exists only on Supabase (not packaged by Debian); as above",
  },
  {
    fn: "darkroom.invoke_worker(text,text)",
    level: "warning extra",
    message: 'unused parameter "p_function"',
    when: "to_regnamespace('net') is null",
    reason: "p_function is used only in the net.http_post(...) call, which the checker cannot " +
      "analyse without pg_net",
  },
  {
    fn: "darkroom.invoke_worker(text,text)",
    level: "performance",
    message: "routine is marked as VOLATILE, should be STABLE",
    reason: "it queues an HTTP request (net.http_post); the checker cannot see through the " +
      "dynamic SQL it also runs",
  },
  {
    fn: "darkroom.housekeep(interval)",
    level: "error",
    message: 'relation "cron.job_run_details" does not exist',
    when: "to_regclass('cron.job_run_details') is null",
    reason: "pg_cron's table exists only on Supabase; the statement runs only when " +
      "to_regclass('cron.job_run_details') finds it",
  },
  {
    fn: "darkroom.housekeep(interval)",
    level: "performance",
    message: "target type is different type than source type",
    detail: 'cast "integer" value to "bigint" type',
    reason: "`v_gone bigint := 0`: a constant cast once per call, no cost",
  },
  {
    fn: "darkroom._wake_subscribers()",
    level: "error",
    message: 'relation "new_rows" does not exist',
    reason: "new_rows is the statement trigger's transition table, which exists only while the " +
      "trigger runs; the check is run without plpgsql_check's newtable argument",
  },
  {
    fn: "darkroom.complete_stage(uuid,text,bigint,jsonb,text)",
    level: "security",
    message: "text type variable is not sanitized",
    reason: "format('select %s($1, $2)', record_result): darkroom.stages.record_result is " +
      "held to ^darkroom\\.record_[a-z_]+$ by its check constraint and only the migrations' " +
      "owner writes that table; %I cannot quote a schema-qualified name",
  },
];

const IGNORE_REASON = await ignoreReason();
/** The test's name, with why it is ignored when it is. */
const named = (name: string) => IGNORE_REASON ? `${name} (ignored: ${IGNORE_REASON})` : name;

/** Why this file cannot run on this engine, or undefined when it can. */
async function ignoreReason(): Promise<string | undefined> {
  if (ENGINE === "pglite") {
    return "PGlite ships no plpgsql_check extension: run with DATABASE_URL (PostgreSQL)";
  }
  const sql = postgres(Deno.env.get("DATABASE_URL")!, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql`select 1 from pg_available_extensions where name = 'plpgsql_check'`;
    return rows.length
      ? undefined
      : "the PostgreSQL server has no plpgsql_check (apt-get install postgresql-15-plpgsql-check)";
  } finally {
    await sql.end();
  }
}

/**
 * plpgsql_check over every PL/pgSQL function in `schemas`: ordinary functions once, trigger
 * functions once for each table a trigger attaches them to (a trigger function attached to
 * none cannot be checked, and is reported as a finding).
 */
async function lintPlpgsql(db: Queryable, schemas: string[]): Promise<Finding[]> {
  return await db.query<Finding>(
    `with fns as (
       select p.oid, p.prorettype = 'trigger'::regtype as is_trigger
         from pg_proc p
         join pg_namespace n on n.oid = p.pronamespace
         join pg_language l on l.oid = p.prolang
        where l.lanname = 'plpgsql' and n.nspname = any($1::text[])
     ), targets as (
       select f.oid, 0::oid as relid from fns f where not f.is_trigger
       union
       select f.oid, t.tgrelid from fns f join pg_trigger t on t.tgfoid = f.oid
        where f.is_trigger and not t.tgisinternal
     )
     select x.oid::regprocedure::text as fn, c.level, c.sqlstate, c.lineno, c.message, c.detail,
            c.query
       from targets x
      cross join lateral plpgsql_check_function_tb(
        x.oid, x.relid::regclass, fatal_errors := false, other_warnings := true,
        extra_warnings := true, performance_warnings := true, security_warnings := true,
        compatibility_warnings := true) c
     union all
     select f.oid::regprocedure::text, 'error', '', null,
            'trigger function attached to no trigger: cannot be checked', null, null
       from fns f
      where f.is_trigger and not exists (
        select 1 from pg_trigger t where t.tgfoid = f.oid and not t.tgisinternal)
     order by 1, 4`,
    [schemas],
  );
}

const matches = (a: Accepted, f: Finding) =>
  a.fn === f.fn && a.level === f.level && a.message === f.message &&
  (a.detail === undefined || a.detail === f.detail);

const show = (f: Finding) =>
  `${f.fn} line ${f.lineno ?? "-"}: ${f.level} ${f.sqlstate} ${f.message}` +
  (f.detail ? ` (${f.detail})` : "") + (f.query ? `\n    in: ${f.query}` : "");

Deno.test({
  name: named("plpgsql_check finds nothing in darkroom's and public's PL/pgSQL but the accepted"),
  ignore: IGNORE_REASON !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const t = await openTestDb("all");
    try {
      await t.db.exec("create extension if not exists plpgsql_check");
      const [{ n }] = await t.db.query<{ n: number }>(
        `select count(*)::integer as n from pg_proc p
           join pg_namespace s on s.oid = p.pronamespace
           join pg_language l on l.oid = p.prolang
          where l.lanname = 'plpgsql' and s.nspname in ('darkroom', 'public')`,
      );
      assert.ok(n >= 15, `only ${n} PL/pgSQL functions found: were the migrations applied?`);

      const findings = await lintPlpgsql(t.db, ["darkroom", "public"]);
      const problems = findings.filter((f) => !ACCEPTED.some((a) => matches(a, f)));
      assert.equal(problems.length, 0, `plpgsql_check:\n  ${problems.map(show).join("\n  ")}`);

      // The list stays true: each accepted finding still occurs wherever its condition holds.
      const stale: string[] = [];
      for (const a of ACCEPTED) {
        if (findings.some((f) => matches(a, f))) continue;
        const holds = a.when === undefined ||
          (await t.db.query<{ ok: boolean }>(`select (${a.when}) as ok`))[0].ok;
        if (holds) stale.push(`${a.fn}: ${a.level} ${a.message}`);
      }
      assert.deepEqual(stale, [], "accepted findings that no longer occur: remove them");
    } finally {
      await t.close();
    }
  },
});

Deno.test({
  name: named("plpgsql_check finds a typo in a branch no call reaches"),
  ignore: IGNORE_REASON !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const t = await openTestDb("none");
    try {
      await t.db.exec(`
        create extension if not exists plpgsql_check;
        create schema lint_probe;
        create table lint_probe.t (id integer primary key, status text);
        create function lint_probe.f(p_id integer) returns text
        language plpgsql as $$
        declare
          v_status text;
        begin
          if p_id < 0 then
            select t.stauts into v_status from lint_probe.t t where t.id = p_id;
          end if;
          return v_status;
        end
        $$;
        create function lint_probe.on_change() returns trigger
        language plpgsql as $$
        begin
          new.statsu := 'x';
          return new;
        end
        $$;
        create trigger on_change before insert on lint_probe.t
          for each row execute function lint_probe.on_change();
        create function lint_probe.orphan() returns trigger
        language plpgsql as $$ begin return new; end $$;`);
      // The function runs fine where the branch is not taken: only the checker sees the typo.
      const [row] = await t.db.query<{ s: string | null }>("select lint_probe.f(1) as s");
      assert.equal(row.s, null);
      const findings = await lintPlpgsql(t.db, ["lint_probe"]);
      const errors = findings.filter((f) => f.level === "error").map((f) =>
        `${f.fn}: ${f.message}`
      );
      assert.deepEqual(errors, [
        "lint_probe.f(integer): column t.stauts does not exist",
        'lint_probe.on_change(): record "new" has no field "statsu"',
        "lint_probe.orphan(): trigger function attached to no trigger: cannot be checked",
      ]);
    } finally {
      await t.close();
    }
  },
});
