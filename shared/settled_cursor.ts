/**
 * @module settled_cursor — the one "never skip a row" cursor over an append-only table with
 * `seq` (identity) and `tx_id xid8 default pg_current_xact_id()` columns: public.events (the
 * SSE stream), and locally _realtime.changes and realtime.messages (the Realtime stand-in).
 *
 * The cursor is `(tx_id, seq)`, not `seq` alone: a row is handed out only once its transaction
 * is older than every transaction still in flight (`pg_snapshot_xmin`), and rows are read in
 * `(tx_id, seq)` order. A transaction with a lower xid than the cursor's can no longer write,
 * so nothing can appear behind the cursor, even when an older transaction inserts a higher
 * `seq` and commits before a younger one holding a lower `seq`, which a `seq` cursor would skip.
 *
 * @example
 * const sql = settledAfter({
 *   select: "e.seq, e.payload", from: "public.events e", alias: "e",
 *   tx: "$1::xid8", seq: "$2::bigint", limit: 500,
 * });
 */

/** The SQL of one page of a settled cursor read. */
export interface SettledRead {
  /** The select list, e.g. `e.seq, e.tx_id::text as tx_id, e.payload`. */
  select: string;
  /** The FROM clause, with `alias` naming the table that has `seq` and `tx_id`. */
  from: string;
  /** The table's alias in `from`. */
  alias: string;
  /** SQL giving the cursor's transaction id (xid8), e.g. `$1::xid8`. */
  tx: string;
  /** SQL giving the cursor's seq (bigint), e.g. `$2::bigint`. */
  seq: string;
  /** Further conditions, ANDed. */
  where?: string;
  /** Rows per page. */
  limit: number;
}

/** The query of one page of rows after the cursor `(tx, seq)` that are safe to hand out. */
export function settledAfter(read: SettledRead): string {
  const a = read.alias;
  return `select ${read.select}
    from ${read.from}
   where (${a}.tx_id, ${a}.seq) > (${read.tx}, ${read.seq})
     and ${a}.tx_id < pg_snapshot_xmin(pg_current_snapshot())
     ${read.where ? `and (${read.where})` : ""}
   order by ${a}.tx_id, ${a}.seq
   limit ${Math.trunc(read.limit)}`;
}
