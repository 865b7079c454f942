/**
 * @module bootstrap — prepares a database the way `supabase db push` finds one on Supabase:
 * the Supabase stand-ins (roles, auth.uid(), the realtime publication and schema), pgmq where
 * the extension is missing, then every migration in supabase/migrations applied once and recorded.
 */
import type { Db } from "../shared/db.ts";

const here = new URL(".", import.meta.url);
const MIGRATIONS_DIR = new URL("../supabase/migrations/", here);

/**
 * Where pgmq comes from in this database: the extension, a `pgmq` schema someone else
 * installed, or our compatible layer (installed now or by an earlier start).
 */
export type PgmqSource = "extension" | "schema" | "compat";

/** The comment local/sql/pgmq.sql puts on its schema. */
const COMPAT_MARKER = "darkroom pgmq-compatible layer";

/** What {@linkcode bootstrapDatabase} did. */
export interface BootstrapReport {
  pgmq: PgmqSource;
  /** Versions applied by this call (empty on a second start). */
  applied: string[];
}

/**
 * Installs the Supabase stand-ins (roles, auth, and the `realtime` schema Broadcast from the
 * database writes to, which the migrations look for); each statement is guarded, so this is safe
 * to repeat.
 */
export async function installSupabaseStandIns(db: Db): Promise<void> {
  await db.exec(await Deno.readTextFile(new URL("sql/supabase_stand_ins.sql", here)));
  await db.exec(await Deno.readTextFile(new URL("sql/realtime_stand_in.sql", here)));
}

/**
 * Installs the pgmq-compatible SQL layer only when neither the pgmq extension nor a `pgmq`
 * schema exists; otherwise whatever is there is used as it is.
 */
export async function installPgmqIfMissing(db: Db): Promise<PgmqSource> {
  const [row] = await db.query<
    { ext: boolean; schema: boolean; available: boolean; comment: string | null }
  >(
    `select exists (select 1 from pg_extension where extname = 'pgmq') as ext,
            exists (select 1 from pg_namespace where nspname = 'pgmq') as schema,
            exists (select 1 from pg_available_extensions where name = 'pgmq') as available,
            (select obj_description(oid, 'pg_namespace') from pg_namespace
              where nspname = 'pgmq') as comment`,
  );
  if (row.ext) return "extension";
  if (row.schema) return row.comment === COMPAT_MARKER ? "compat" : "schema";
  if (row.available) {
    await db.exec("create extension if not exists pgmq");
    return "extension";
  }
  await db.exec(await Deno.readTextFile(new URL("sql/pgmq.sql", here)));
  return "compat";
}

/** A migration file: `<version>_<name>.sql`. */
export interface Migration {
  version: string;
  name: string;
  sql: string;
}

/** Reads supabase/migrations in version order. */
export async function readMigrations(dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const out: Migration[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const m = /^(\d+)_(.+)\.sql$/.exec(entry.name);
    if (!entry.isFile || !m) continue;
    out.push({ version: m[1], name: m[2], sql: await Deno.readTextFile(new URL(entry.name, dir)) });
  }
  return out.sort((a, b) => a.version.localeCompare(b.version));
}

/**
 * Applies the migrations not yet recorded in supabase_migrations.schema_migrations (the table the
 * Supabase CLI keeps), each in one transaction together with its record.
 */
export async function applyMigrations(db: Db, migrations?: Migration[]): Promise<string[]> {
  await db.exec(`
    create schema if not exists supabase_migrations;
    create table if not exists supabase_migrations.schema_migrations (
      version text primary key,
      statements text[],
      name text
    );`);
  const done = new Set(
    (await db.query<{ version: string }>(
      "select version from supabase_migrations.schema_migrations",
    ))
      .map((r) => r.version),
  );
  const applied: string[] = [];
  for (const m of migrations ?? await readMigrations()) {
    if (done.has(m.version)) continue;
    const record = `insert into supabase_migrations.schema_migrations (version, name) values ` +
      `('${m.version}', '${m.name.replaceAll("'", "''")}');`;
    // The record and the change commit together, or neither does.
    await db.execInTransaction(`${record}\n${m.sql}`).catch((err) => {
      throw new Error(`Cannot apply migration ${m.version}_${m.name}: ${(err as Error).message}`, {
        cause: err,
      });
    });
    applied.push(m.version);
  }
  return applied;
}

/** Everything a fresh or existing database needs before the functions run. */
export async function bootstrapDatabase(db: Db): Promise<BootstrapReport> {
  await installSupabaseStandIns(db);
  const pgmq = await installPgmqIfMissing(db);
  const applied = await applyMigrations(db);
  return { pgmq, applied };
}
