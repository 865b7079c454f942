/**
 * @module realtime/catalog — the tables whose changes are logged (those carrying the
 * `realtime_changes` trigger of local/sql/realtime_changes.sql): primary key and columns, with
 * the type names (`pg_type.typname`: int8, uuid, _text, ...) realtime-js converts values by.
 */
import type { Queryable } from "../../shared/db.ts";

/** A column as the `columns` field of a postgres_changes payload carries it. */
export interface Column {
  name: string;
  type: string;
}

/** A table whose changes are delivered. */
export interface LoggedTable {
  schema: string;
  table: string;
  /** The primary key column (single-column keys only). */
  pk: string;
  /** Its SQL type, for casting key arrays (`uuid`, `bigint`). */
  pkType: string;
  columns: Column[];
}

/** Tables by `schema.table`. */
export type Catalog = Map<string, LoggedTable>;

/** The name of the trigger that marks a table as logged. */
export const TRIGGER_NAME = "realtime_changes";

/** Reads the logged tables from the database's catalog. */
export async function loadCatalog(db: Queryable): Promise<Catalog> {
  const rows = await db.query<LoggedTable & { oid: number }>(
    `select c.oid::int as oid, n.nspname as schema, c.relname as "table", a.attname as pk,
            format_type(a.atttypid, a.atttypmod) as "pkType"
       from pg_trigger t
       join pg_class c on c.oid = t.tgrelid
       join pg_namespace n on n.oid = c.relnamespace
       join pg_index i on i.indrelid = c.oid and i.indisprimary and i.indnatts = 1
       join pg_attribute a on a.attrelid = c.oid and a.attnum = i.indkey[0]
      where t.tgname = $1 and not t.tgisinternal`,
    [TRIGGER_NAME],
  );
  const catalog: Catalog = new Map();
  for (const row of rows) {
    const columns = await db.query<Column>(
      `select a.attname as name, t.typname as type
         from pg_attribute a join pg_type t on t.oid = a.atttypid
        where a.attrelid = $1::oid and a.attnum > 0 and not a.attisdropped
        order by a.attnum`,
      [row.oid],
    );
    catalog.set(`${row.schema}.${row.table}`, {
      schema: row.schema,
      table: row.table,
      pk: row.pk,
      pkType: row.pkType,
      columns,
    });
  }
  return catalog;
}

/** Quotes an identifier for SQL text (names come from the catalog, never from a client). */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
