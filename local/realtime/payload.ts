/**
 * @module realtime/payload — the `postgres_changes` message body realtime-js expects:
 * `{ids, data: {schema, table, commit_timestamp, type, columns, record, old_record, errors}}`.
 * The client (RealtimeChannel.ts `_updateFilterTransform`, lib/transformers.ts
 * `convertChangeData`) turns it into `{eventType, new, old, ...}`, converting each value by its
 * column's `type`; values here are already JSON-typed (to_jsonb), which those conversions keep.
 */
import type { Column, LoggedTable } from "./catalog.ts";
import type { Change } from "./subscription.ts";

/** Builds the payload of one change for the bindings `ids`, keeping only `select` columns. */
export function changePayload(
  change: Change,
  table: LoggedTable,
  ids: number[],
  select: string[] | null,
): Record<string, unknown> {
  const keep = select ? new Set(select) : null;
  const columns: Column[] = keep ? table.columns.filter((c) => keep.has(c.name)) : table.columns;
  const data: Record<string, unknown> = {
    schema: change.schema,
    table: change.table,
    commit_timestamp: change.commitTimestamp,
    type: change.type,
    columns,
    errors: null,
  };
  if (change.type !== "DELETE") data.record = pick(change.record, keep);
  if (change.type !== "INSERT") data.old_record = pick(change.oldRecord, keep);
  return { ids, data };
}

function pick(
  row: Record<string, unknown> | null,
  keep: Set<string> | null,
): Record<string, unknown> {
  if (!row || !keep) return row ?? {};
  return Object.fromEntries(Object.entries(row).filter(([k]) => keep.has(k)));
}
