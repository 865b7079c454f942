/**
 * @module realtime/change_log — reads `_realtime.changes` (local/sql/realtime_changes.sql)
 * without ever skipping a row, by the settled cursor of shared/settled_cursor.ts; and the
 * snapshots that decide which changes a channel that just joined gets.
 */
import type { Db } from "../../shared/db.ts";
import { settledAfter } from "../../shared/settled_cursor.ts";
import type { Change } from "./subscription.ts";

/** Where the reader is: the last row handed out. */
export interface Cursor {
  /** xid8 as text. */
  tx: string;
  seq: number;
}

interface ChangeRow {
  seq: number;
  tx_id: string;
  schema_name: string;
  table_name: string;
  type: Change["type"];
  record: Record<string, unknown> | null;
  old_record: Record<string, unknown> | null;
  commit_timestamp: string;
}

/** A `pg_current_snapshot()`: which transactions had committed when it was taken. */
export interface Snapshot {
  xmin: bigint;
  xmax: bigint;
  inProgress: Set<bigint>;
}

/** Rows older than this are deleted by {@linkcode pruneChanges}. */
export const RETENTION = "10 minutes";

/**
 * The cursor to start from for channels that joined at `snapshots`: the oldest xmin, so every
 * transaction that was still open when a channel joined is read.
 */
export function cursorFor(snapshots: Snapshot[]): Cursor {
  const xmin = snapshots.reduce((min, s) => s.xmin < min ? s.xmin : min, snapshots[0].xmin);
  return { tx: String(xmin), seq: 0 };
}

/** How long row changes stay logged after the last {@linkcode keepLogging}. */
export const LISTEN_LEASE_SECONDS = 60;

/**
 * Row changes are logged only while someone listens (the trigger reads `_realtime.listening`):
 * keeps them logged for {@linkcode LISTEN_LEASE_SECONDS} more. Called when a channel with
 * postgres_changes bindings joins, and every few seconds while one is joined. Several platform
 * processes on one database share the lease; it lapses on its own when the last one stops.
 */
export async function keepLogging(db: Db): Promise<void> {
  await db.query(
    `insert into _realtime.listening (id, until)
     values (true, now() + make_interval(secs => $1))
     on conflict (id) do update set until = excluded.until
      where _realtime.listening.until < excluded.until`,
    [LISTEN_LEASE_SECONDS],
  );
}

/** The current snapshot, taken when a channel joins: it gets no change committed before. */
export async function currentSnapshot(db: Db): Promise<Snapshot> {
  const [row] = await db.query<{ snap: string }>("select pg_current_snapshot()::text as snap");
  const [xmin, xmax, xip] = row.snap.split(":");
  return {
    xmin: BigInt(xmin),
    xmax: BigInt(xmax),
    inProgress: new Set(xip ? xip.split(",").map(BigInt) : []),
  };
}

/** Whether transaction `tx` (xid8 text) had finished when `snapshot` was taken. */
export function finishedBefore(snapshot: Snapshot, tx: string): boolean {
  const xid = BigInt(tx);
  return xid < snapshot.xmin || (xid < snapshot.xmax && !snapshot.inProgress.has(xid));
}

/** Reads up to `limit` changes after `cursor` that are safe to hand out. */
export async function readChanges(
  db: Db,
  cursor: Cursor,
  limit: number,
): Promise<{ changes: Change[]; cursor: Cursor }> {
  const rows = await db.query<ChangeRow>(
    settledAfter({
      select: `c.seq, c.tx_id::text as tx_id, c.schema_name, c.table_name, c.type, c.record,
               c.old_record, to_char(c.commit_ts at time zone 'utc',
                 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as commit_timestamp`,
      from: "_realtime.changes c",
      alias: "c",
      tx: "$1::xid8",
      seq: "$2::bigint",
      limit,
    }),
    [cursor.tx, cursor.seq],
  );
  const last = rows.at(-1);
  return {
    changes: rows.map((r) => ({
      seq: Number(r.seq),
      tx: r.tx_id,
      schema: r.schema_name,
      table: r.table_name,
      type: r.type,
      record: r.record,
      oldRecord: r.old_record,
      commitTimestamp: r.commit_timestamp,
    })),
    cursor: last ? { tx: last.tx_id, seq: Number(last.seq) } : cursor,
  };
}

/** Deletes changes older than {@linkcode RETENTION}; returns how many. */
export async function pruneChanges(db: Db): Promise<number> {
  const rows = await db.query<{ n: number }>(
    `with gone as (
       delete from _realtime.changes where commit_ts < now() - interval '${RETENTION}'
       returning 1)
     select count(*)::int as n from gone`,
  );
  return rows[0]?.n ?? 0;
}
