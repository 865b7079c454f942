/**
 * @module realtime/delivery — decides who receives which change: bindings matched by table,
 * event and filter, then row level security asked in SQL, as the subscriber, in batches: one
 * transaction per (token, named task) per poll, one `pk = any($1)` query per table in it.
 *
 * DELETEs go to service_role subscribers only: the row is gone, so RLS cannot be asked whether
 * the subscriber could see it. (Supabase sends the key of a deleted row to every matching
 * subscriber; sending it to nobody but service_role leaks nothing.)
 */
import { asCaller } from "../../shared/auth.ts";
import type { Db } from "../../shared/db.ts";
import type { Logger } from "../../shared/log.ts";
import { type Catalog, ident, type LoggedTable } from "./catalog.ts";
import { finishedBefore } from "./change_log.ts";
import type { Channel } from "./channel.ts";
import { changePayload } from "./payload.ts";
import { type Binding, bindingMatches, type Change } from "./subscription.ts";

/** One message to push: a change to a channel, for some of its bindings. */
export interface Delivery {
  channel: Channel;
  payload: Record<string, unknown>;
}

interface Candidate {
  channel: Channel;
  change: Change;
  table: LoggedTable;
  bindings: Binding[];
}

interface VisibilityGroup {
  channel: Channel;
  taskId: string | null;
  /** Primary keys to ask about, by `schema.table`. */
  keys: Map<string, Set<string>>;
  visible: Set<string>;
}

/** The messages `changes` give rise to for `channels`, in change order per channel. */
export async function planDeliveries(
  db: Db,
  log: Logger,
  catalog: Catalog,
  changes: Change[],
  channels: Channel[],
): Promise<Delivery[]> {
  const candidates: Candidate[] = [];
  const groups = new Map<string, VisibilityGroup>();
  for (const channel of channels) {
    for (const change of changes) {
      const table = catalog.get(`${change.schema}.${change.table}`);
      // A channel gets the changes committed after it joined, as on Supabase.
      if (!table || finishedBefore(channel.since, change.tx)) continue;
      const bindings = channel.bindings.filter((b) => bindingMatches(b, change));
      if (bindings.length === 0) continue;
      candidates.push({ channel, change, table, bindings });
      if (change.type === "DELETE") continue;
      for (const b of bindings) {
        const key = `${channel.token}\n${b.taskId ?? ""}`;
        let group = groups.get(key);
        if (!group) {
          group = { channel, taskId: b.taskId, keys: new Map(), visible: new Set() };
          groups.set(key, group);
        }
        const tableKey = `${table.schema}.${table.table}`;
        const keys = group.keys.get(tableKey) ?? new Set<string>();
        keys.add(pkOf(change, table));
        group.keys.set(tableKey, keys);
      }
    }
  }
  for (const group of groups.values()) await checkVisibility(db, log, catalog, group);

  const out: Delivery[] = [];
  for (const { channel, change, table, bindings } of candidates) {
    const tableKey = `${table.schema}.${table.table}`;
    const allowed = bindings.filter((b) =>
      change.type === "DELETE"
        ? channel.caller.role === "service_role"
        : groups.get(`${channel.token}\n${b.taskId ?? ""}`)!.visible
          .has(`${tableKey}\n${pkOf(change, table)}`)
    );
    // Bindings that select different columns get a message each.
    const bySelect = new Map<string, Binding[]>();
    for (const b of allowed) {
      const key = JSON.stringify(b.select);
      bySelect.set(key, [...(bySelect.get(key) ?? []), b]);
    }
    for (const group of bySelect.values()) {
      const ids = group.map((b) => b.id);
      out.push({ channel, payload: changePayload(change, table, ids, group[0].select) });
    }
  }
  return out;
}

/** Asks, as the group's caller, which of its rows RLS lets them select. */
async function checkVisibility(
  db: Db,
  log: Logger,
  catalog: Catalog,
  group: VisibilityGroup,
): Promise<void> {
  try {
    await asCaller(db, group.channel.caller, async (tx) => {
      for (const [tableKey, keys] of group.keys) {
        const t = catalog.get(tableKey)!;
        const rows = await tx.query<{ pk: string }>(
          `select ${ident(t.pk)}::text as pk from ${ident(t.schema)}.${ident(t.table)}
            where ${ident(t.pk)} = any($1::${t.pkType}[])`,
          [[...keys]],
        );
        for (const row of rows) group.visible.add(`${tableKey}\n${row.pk}`);
      }
    }, { taskId: group.taskId ?? undefined });
  } catch (err) {
    // Delivering nothing is the safe answer when the check itself fails.
    log.warn("realtime visibility check failed", { err, role: group.channel.caller.role });
  }
}

function pkOf(change: Change, table: LoggedTable): string {
  return String((change.record ?? change.oldRecord ?? {})[table.pk]);
}
