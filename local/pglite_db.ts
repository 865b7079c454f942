/**
 * @module pglite_db — the embedded PGlite engine behind the shared {@linkcode Db} interface.
 *
 * PGlite is ONE Postgres session: statements from concurrent callers are queued, and a
 * transaction holds the session until it ends. Keep transactions short and never hold one
 * across network I/O.
 */
import { PGlite } from "@electric-sql/pglite";
import type { Db, Queryable } from "../shared/db.ts";

/** PGlite behind the {@linkcode Db} interface. */
export class PGliteDb implements Db {
  readonly pg: PGlite;

  private constructor(pg: PGlite) {
    this.pg = pg;
  }

  /** Opens the database stored under `dataDir` (created when missing), or an in-memory one. */
  static async open(dataDir?: string): Promise<PGliteDb> {
    // PGlite makes its own directory but not the ones above it (a fresh clone has no .data/).
    if (dataDir) await Deno.mkdir(dataDir, { recursive: true });
    const pg = dataDir ? await PGlite.create(dataDir) : await PGlite.create();
    return new PGliteDb(pg);
  }

  async query<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
    const res = await this.pg.query<T>(text, params);
    return res.rows;
  }

  async exec(script: string): Promise<void> {
    await this.pg.exec(script);
  }

  async execInTransaction(script: string): Promise<void> {
    await this.pg.transaction(async (tx) => {
      await tx.exec(script);
    });
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return await this.pg.transaction(async (tx) => {
      const q: Queryable = {
        async query<R>(text: string, params: unknown[] = []) {
          return (await tx.query<R>(text, params)).rows;
        },
      };
      return await fn(q);
    });
  }

  async close(): Promise<void> {
    if (!this.pg.closed) await this.pg.close();
  }
}
