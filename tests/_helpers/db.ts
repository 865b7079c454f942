/**
 * @module tests/_helpers/db — a fresh database per test file, on the engine the run asks for:
 * PostgreSQL when DATABASE_URL is set (a new database created for the file, dropped after), else
 * an in-memory PGlite.
 */
import postgres from "postgres";
import { type Db, PostgresDb, type Queryable } from "../../shared/db.ts";
import { PGliteDb } from "../../local/pglite_db.ts";
import {
  bootstrapDatabase,
  installPgmqIfMissing,
  installSupabaseStandIns,
} from "../../local/bootstrap.ts";

/** A test database and how to get rid of it. */
export interface TestDb {
  db: Db;
  /** The connection string when the engine is PostgreSQL. */
  url?: string;
  /** Opens another, separate connection (pool) to the same database; PGlite shares its session. */
  connect(): Db;
  close(): Promise<void>;
}

/** Which engine the tests in this run use. */
export const ENGINE: "postgres" | "pglite" = Deno.env.get("DATABASE_URL") ? "postgres" : "pglite";

/** What to prepare: everything (default), or only the stand-ins and pgmq. */
export type Prepare = "all" | "pgmq" | "none";

/** Opens a fresh database for one test file. */
export async function openTestDb(prepare: Prepare = "all"): Promise<TestDb> {
  const base = Deno.env.get("DATABASE_URL");
  let t: TestDb;
  if (!base) {
    const db = await PGliteDb.open();
    t = { db, connect: () => db, close: () => db.close() };
  } else {
    const name = `darkroom_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const admin = postgres(base, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${name}`);
    await admin.end();
    const u = new URL(base);
    u.pathname = `/${name}`;
    const url = u.toString();
    const db = new PostgresDb(url);
    const extra: Db[] = [];
    t = {
      db,
      url,
      connect: () => {
        const d = new PostgresDb(url);
        extra.push(d);
        return d;
      },
      close: async () => {
        for (const d of extra) await d.close();
        await db.close();
        const a = postgres(base, { max: 1, onnotice: () => {} });
        await a.unsafe(`drop database if exists ${name} with (force)`);
        await a.end();
      },
    };
  }
  if (prepare === "all") await bootstrapDatabase(t.db);
  else if (prepare === "pgmq") {
    await installSupabaseStandIns(t.db);
    await installPgmqIfMissing(t.db);
  }
  return t;
}

/**
 * Empties every stage queue (the registry's), so a test sharing its file's database reads only
 * the messages of the tasks it creates: pgmq.read hands out any visible message.
 */
export async function purgeStageQueues(db: Queryable): Promise<void> {
  await db.query("select pgmq.purge_queue(s.queue) from darkroom.stages s");
}

/**
 * Runs `fn` in a transaction as `role` with `claims` set, as PostgREST would, and returns its
 * result — or the error it threw (so a test can assert on a refusal's SQLSTATE).
 */
export async function asRole<T>(
  db: Db,
  role: string,
  claims: Record<string, unknown>,
  fn: (tx: Queryable) => Promise<T>,
): Promise<T | unknown> {
  try {
    return await db.transaction(async (tx) => {
      await tx.query(
        "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
        [role, JSON.stringify({ role, ...claims })],
      );
      return await fn(tx);
    });
  } catch (err) {
    return err;
  }
}

/**
 * `db`, with the text of every statement sent through its `query` kept in `seen` (in order): to
 * count the round trips a runner makes. Everything else goes to `db` unchanged.
 */
export function recordingDb<D extends Queryable>(db: D): { db: D; seen: string[] } {
  const seen: string[] = [];
  const spy = new Proxy(db, {
    get(target, prop) {
      if (prop === "query") {
        return (sql: string, params?: unknown[]) => (seen.push(sql), target.query(sql, params));
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db: spy, seen };
}
