/**
 * @module db — the one database interface every function and the local platform share.
 *
 * Functions talk to Postgres through {@linkcode PostgresDb} (postgres.js); the local platform
 * hands them an embedded PGlite behind the same interface (local/pglite_db.ts). Nothing above
 * this file knows which engine it runs on.
 */
import postgres from "postgres";

/** Something that runs one SQL statement with positional parameters ($1, $2, ...). */
export interface Queryable {
  /** Runs `text` with `params` and returns its rows. json/jsonb come back parsed, int8 as number. */
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

/** A connection (pool) to Postgres. */
export interface Db extends Queryable {
  /** Runs a script of several statements without parameters. */
  exec(script: string): Promise<void>;
  /** Runs a script of several statements in one transaction (a migration). */
  execInTransaction(script: string): Promise<void>;
  /** Runs `fn` inside one transaction; it commits when `fn` resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Closes the connection(s). */
  close(): Promise<void>;
}

/** Options of {@linkcode PostgresDb}. */
export interface PostgresDbOptions {
  /** Connections in the pool. Default 4: many function instances run at once on Supabase. */
  max?: number;
  /** Use prepared statements. Default false, which the Supavisor pooler in transaction mode needs. */
  prepare?: boolean;
}

/** postgres.js behind the {@linkcode Db} interface. */
export class PostgresDb implements Db {
  readonly #sql: postgres.Sql;

  constructor(url: string, options: PostgresDbOptions = {}) {
    this.#sql = postgres(url, {
      max: options.max ?? 4,
      prepare: options.prepare ?? false,
      onnotice: () => {},
      idle_timeout: 20,
      connect_timeout: 10,
      // int8 as a JS number (counts, sequences, byte sizes stay far below 2^53), as PGlite does.
      types: {
        // json/jsonb parameters are passed as JSON text by callers (as PGlite takes them):
        // send text as it is instead of JSON-encoding it a second time.
        json: {
          to: 114,
          from: [114, 3802],
          serialize: (x: unknown) => typeof x === "string" ? x : JSON.stringify(x),
          parse: (x: string) => JSON.parse(x),
        },
        int8: {
          to: 20,
          from: [20],
          serialize: (x: number) => String(x),
          parse: (x: string) => Number(x),
        },
      },
    });
  }

  async query<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
    // deno-lint-ignore no-explicit-any
    const rows = await this.#sql.unsafe(text, params as any[]);
    return [...rows] as T[];
  }

  async exec(script: string): Promise<void> {
    await this.#sql.unsafe(script);
  }

  async execInTransaction(script: string): Promise<void> {
    await this.#sql.begin((tx) => tx.unsafe(script));
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return await this.#sql.begin(async (tx) => {
      const q: Queryable = {
        async query<R>(text: string, params: unknown[] = []) {
          // deno-lint-ignore no-explicit-any
          return [...(await tx.unsafe(text, params as any[]))] as R[];
        },
      };
      return await fn(q);
    }) as T;
  }

  async close(): Promise<void> {
    await this.#sql.end({ timeout: 5 });
  }
}

/** True for errors that mean the database could not be reached. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? "";
  return ["ECONNREFUSED", "ECONNRESET", "CONNECTION_CLOSED", "CONNECT_TIMEOUT", "57P01", "57P03"]
    .includes(code) || /PGlite is closed/i.test((err as Error)?.message ?? "");
}
