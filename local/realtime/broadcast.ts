/**
 * @module realtime/broadcast — Broadcast from the database, as Supabase Realtime serves it:
 * rows `realtime.send()` inserts into realtime.messages (local/sql/realtime_stand_in.sql) are
 * relayed to the channels joined on their topic, private messages to private channels only;
 * a private join is authorised by the select policies on realtime.messages, evaluated as the
 * subscriber with `realtime.topic` set to the channel's topic (Realtime's authorization.ex).
 */
import type { Caller } from "../../shared/auth.ts";
import type { Db } from "../../shared/db.ts";
import { settledAfter } from "../../shared/settled_cursor.ts";
import { type Cursor, finishedBefore, RETENTION } from "./change_log.ts";
import type { Channel } from "./channel.ts";

/** One message of realtime.messages. */
export interface BroadcastMessage {
  seq: number;
  /** The writing transaction (xid8 as text). */
  tx: string;
  id: string;
  topic: string;
  event: string;
  payload: unknown;
  private: boolean;
}

interface MessageRow {
  seq: number;
  tx_id: string;
  id: string;
  topic: string;
  event: string | null;
  payload: unknown;
  private: boolean | null;
}

/**
 * Whether realtime.messages is the stand-in's, with the cursor columns the relay reads (a
 * Supabase database's own realtime schema has none: its Realtime reads the WAL).
 */
export async function hasMessageLog(db: Db): Promise<boolean> {
  const [row] = await db.query<{ ok: boolean }>(
    `select count(*) = 2 as ok from pg_attribute
      where attrelid = to_regclass('realtime.messages') and attname in ('seq', 'tx_id')
        and not attisdropped`,
  );
  return row?.ok === true;
}

/** Reads up to `limit` broadcast messages after `cursor` that are safe to hand out. */
export async function readMessages(
  db: Db,
  cursor: Cursor,
  limit: number,
): Promise<{ messages: BroadcastMessage[]; cursor: Cursor }> {
  const rows = await db.query<MessageRow>(
    settledAfter({
      select: "m.seq, m.tx_id::text as tx_id, m.id, m.topic, m.event, m.payload, m.private",
      from: "realtime.messages m",
      alias: "m",
      tx: "$1::xid8",
      seq: "$2::bigint",
      where: "m.extension = 'broadcast'",
      limit,
    }),
    [cursor.tx, cursor.seq],
  );
  const last = rows.at(-1);
  return {
    messages: rows.map((r) => ({
      seq: Number(r.seq),
      tx: r.tx_id,
      id: r.id,
      topic: r.topic,
      event: r.event ?? "",
      payload: r.payload,
      private: r.private === true,
    })),
    cursor: last ? { tx: last.tx_id, seq: Number(last.seq) } : cursor,
  };
}

/** Pushes each message to the channels of its topic that joined before it was committed. */
export function relayMessages(messages: BroadcastMessage[], channels: Channel[]): number {
  let pushed = 0;
  for (const m of messages) {
    for (const channel of channels) {
      // Public and private channels of one topic are separate rooms on Supabase.
      if (channel.subTopic !== m.topic || channel.private !== m.private) continue;
      if (finishedBefore(channel.since, m.tx)) continue;
      channel.push("broadcast", {
        type: "broadcast",
        event: m.event,
        payload: m.payload,
        meta: { id: m.id },
      });
      pushed++;
    }
  }
  return pushed;
}

/** Deletes messages older than {@linkcode RETENTION}; returns how many. */
export async function pruneMessages(db: Db): Promise<number> {
  const rows = await db.query<{ n: number }>(
    `with gone as (
       delete from realtime.messages
        where inserted_at < localtimestamp - interval '${RETENTION}'
       returning 1)
     select count(*)::int as n from gone`,
  );
  return rows[0]?.n ?? 0;
}

const ROLLBACK = Symbol("rollback");

/**
 * Whether `caller` may read broadcasts of `topic` (a channel's topic without `realtime:`): one
 * broadcast and one presence row are inserted for the topic, the caller's role, claims and
 * `realtime.topic` set, and the rows the policies let them select read back; then everything is
 * rolled back, as Realtime's authorization does.
 */
export async function mayReadTopic(db: Db, caller: Caller, topic: string): Promise<boolean> {
  let readable = false;
  try {
    await db.transaction(async (tx) => {
      const inserted = await tx.query<{ id: string; extension: string }>(
        `insert into realtime.messages (topic, extension)
         values ($1, 'broadcast'), ($1, 'presence') returning id::text as id, extension`,
        [topic],
      );
      const broadcastId = inserted.find((r) => r.extension === "broadcast")!.id;
      await tx.query(
        `select set_config('role', $1, true), set_config('realtime.topic', $2, true),
                set_config('request.jwt.claims', $3, true),
                set_config('request.headers', '{}', true)`,
        [caller.role, topic, JSON.stringify(caller.claims)],
      );
      const rows = await tx.query<{ id: string }>(
        `select id::text as id from realtime.messages
          where topic = $1 and extension = 'broadcast' and id = $2::uuid`,
        [topic, broadcastId],
      );
      readable = rows.length === 1;
      throw ROLLBACK;
    });
  } catch (err) {
    if (err !== ROLLBACK) throw err;
  }
  return readable;
}
