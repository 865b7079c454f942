/**
 * @module realtime/subscription — one postgres_changes binding of a channel, parsed from the
 * `config.postgres_changes` list of a `phx_join`, and whether a logged change matches it.
 * Its `id` is echoed in the join reply and in every `postgres_changes` message's `ids`: that is
 * how realtime-js routes a change to the callback (RealtimeChannel.ts `_updateFilterMessage`).
 */
import { isUuid } from "../../shared/uuid.ts";
import type { Catalog, LoggedTable } from "./catalog.ts";
import { type Condition, FilterError, matchesFilter, parseFilter } from "./filter.ts";

/** A change read from the log. */
export interface Change {
  seq: number;
  /** The writing transaction (xid8 as text). */
  tx: string;
  schema: string;
  table: string;
  type: "INSERT" | "UPDATE" | "DELETE";
  record: Record<string, unknown> | null;
  /** For UPDATE and DELETE: the primary key only, as Supabase sends it for RLS tables. */
  oldRecord: Record<string, unknown> | null;
  /** ISO 8601 with milliseconds and Z, as Realtime formats it. */
  commitTimestamp: string;
}

/** A parsed binding; `error` is set (and nothing matches) when the server cannot serve it. */
export interface Binding {
  id: number;
  /** What the client sent, echoed in the join reply with `id`. */
  params: Record<string, unknown>;
  event: "*" | "INSERT" | "UPDATE" | "DELETE";
  schema: string;
  /** null: every logged table of the schema. */
  table: string | null;
  conditions: Condition[];
  /** Columns to send (`select`), or null for all. */
  select: string[] | null;
  /**
   * The task the filter names (`id=eq.<uuid>` on tasks, `task_id=eq.<uuid>` elsewhere): the
   * visibility check passes it to asCaller, so a subscriber may see that ownerless task.
   */
  taskId: string | null;
  error: string | null;
}

const EVENTS = new Set(["*", "INSERT", "UPDATE", "DELETE"]);
/** Realtime's ids are `:erlang.phash2(params)`, integers below 2^27. */
const ID_RANGE = 2 ** 27;

/** Parses a join's `config.postgres_changes`, giving each binding an id unique in the channel. */
export function parseBindings(list: unknown, catalog: Catalog): Binding[] {
  if (!Array.isArray(list)) return [];
  const used = new Set<number>();
  return list.filter((p) => p && typeof p === "object" && !Array.isArray(p)).map((params) => {
    let id = hash(JSON.stringify(params, Object.keys(params).sort())) % ID_RANGE;
    while (used.has(id)) id = (id + 1) % ID_RANGE;
    used.add(id);
    return { id, ...parseParams(params, catalog) };
  });
}

function parseParams(params: Record<string, unknown>, catalog: Catalog): Omit<Binding, "id"> {
  const event = String(params.event ?? "").toUpperCase() as Binding["event"];
  const schema = typeof params.schema === "string" ? params.schema : "";
  const table = typeof params.table === "string" && params.table !== "*" ? params.table : null;
  const filter = typeof params.filter === "string" && params.filter !== "" ? params.filter : null;
  const select = Array.isArray(params.select) ? params.select.map(String) : null;
  const binding = {
    params,
    event,
    schema,
    table,
    conditions: [],
    select,
    taskId: null,
    error: null,
  };
  const tables = [...catalog.values()].filter((t) =>
    (schema === "*" || t.schema === schema) && (table === null || t.table === table)
  );
  if (!EVENTS.has(event) || !schema || tables.length === 0) {
    const where = `[event: ${params.event}, schema: ${params.schema}, table: ${
      params.table ?? "*"
    }, filters: ${filter ?? "[]"}]`;
    return {
      ...binding,
      error: "Unable to subscribe to changes with given parameters. " +
        `Please check Realtime is enabled for the given connect parameters: ${where}`,
    };
  }
  if (filter === null) return binding;
  if (table === null) {
    return { ...binding, error: "Error parsing `filter` params: a filter needs a table" };
  }
  try {
    const conditions = parseFilter(filter, tables[0].columns);
    return { ...binding, conditions, taskId: taskIdOf(tables[0], conditions) };
  } catch (err) {
    if (err instanceof FilterError) return { ...binding, error: err.message };
    throw err;
  }
}

function taskIdOf(table: LoggedTable, conditions: Condition[]): string | null {
  const column = table.schema === "public" && table.table === "tasks" ? "id" : "task_id";
  const named = conditions.find((c) => c.column.name === column && c.op === "eq");
  return named && isUuid(named.values[0]) ? named.values[0].toLowerCase() : null;
}

/** Whether `change` matches the binding's table, event and filter (DELETE: on the old key). */
export function bindingMatches(b: Binding, change: Change): boolean {
  if (b.error !== null) return false;
  if (b.schema !== "*" && b.schema !== change.schema) return false;
  if (b.table !== null && b.table !== change.table) return false;
  if (b.event !== "*" && b.event !== change.type) return false;
  const row = change.type === "DELETE" ? change.oldRecord : change.record;
  return b.conditions.length === 0 || (row !== null && matchesFilter(b.conditions, row));
}

/** FNV-1a, 32 bits. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
