/**
 * @module queue — the only place in TypeScript that spells `pgmq.*`.
 */
import type { Queryable } from "./db.ts";

/** A message read from a queue. */
export interface QueueMessage<T = Record<string, unknown>> {
  msgId: number;
  readCt: number;
  enqueuedAt: Date;
  vt: Date;
  message: T;
}

/** Depth and age of one queue. */
export interface QueueMetrics {
  queue: string;
  length: number;
  oldestMsgAgeSec: number | null;
  totalMessages: number;
}

/** A pgmq queue. */
export class Queue<T = Record<string, unknown>> {
  constructor(readonly db: Queryable, readonly name: string) {}

  /** Sends one message, visible after `delaySeconds` (default 0). Returns its id. */
  async send(message: T, delaySeconds = 0): Promise<number> {
    const [row] = await this.db.query<{ id: number }>(
      "select pgmq.send($1, $2::jsonb, $3::integer) as id",
      [this.name, JSON.stringify(message), delaySeconds],
    );
    return Number(row.id);
  }

  /** Reads up to `qty` messages and hides them for `vtSeconds`. */
  async read(vtSeconds: number, qty: number): Promise<QueueMessage<T>[]> {
    const rows = await this.db.query<
      { msg_id: number; read_ct: number; enqueued_at: Date; vt: Date; message: T }
    >(
      "select msg_id, read_ct, enqueued_at, vt, message from pgmq.read($1, $2::integer, $3::integer)",
      [this.name, vtSeconds, qty],
    );
    return rows.map((r) => ({
      msgId: Number(r.msg_id),
      readCt: Number(r.read_ct),
      enqueuedAt: new Date(r.enqueued_at),
      vt: new Date(r.vt),
      message: r.message,
    }));
  }

  /**
   * Sets a message's visibility to `vtSeconds` from now (0: visible at once). False when the
   * message is gone.
   */
  async setVisibility(msgId: number, vtSeconds: number): Promise<boolean> {
    const rows = await this.db.query<{ msg_id: number }>(
      "select msg_id from pgmq.set_vt($1, $2::bigint, $3::integer)",
      [this.name, msgId, vtSeconds],
    );
    return rows.length > 0;
  }

  /** Moves a message to the archive table. */
  async archive(msgId: number): Promise<boolean> {
    const [row] = await this.db.query<{ ok: boolean }>(
      "select pgmq.archive($1, $2::bigint) as ok",
      [this.name, msgId],
    );
    return row.ok;
  }

  /** Deletes a message. */
  async delete(msgId: number): Promise<boolean> {
    const [row] = await this.db.query<{ ok: boolean }>(
      "select pgmq.delete($1, $2::bigint) as ok",
      [this.name, msgId],
    );
    return row.ok;
  }

  /** Depth and age of this queue. */
  async metrics(): Promise<QueueMetrics> {
    const [row] = await this.db.query<MetricsRow>(
      "select queue_name, queue_length, oldest_msg_age_sec, total_messages from pgmq.metrics($1)",
      [this.name],
    );
    return metricsFromRow(row);
  }
}

interface MetricsRow {
  queue_name: string;
  queue_length: number;
  oldest_msg_age_sec: number | null;
  total_messages: number;
}

function metricsFromRow(r: MetricsRow): QueueMetrics {
  return {
    queue: r.queue_name,
    length: Number(r.queue_length),
    oldestMsgAgeSec: r.oldest_msg_age_sec === null ? null : Number(r.oldest_msg_age_sec),
    totalMessages: Number(r.total_messages),
  };
}

/** Depth and age of every queue. */
export async function allQueueMetrics(db: Queryable): Promise<QueueMetrics[]> {
  const rows = await db.query<MetricsRow>(
    "select queue_name, queue_length, oldest_msg_age_sec, total_messages from pgmq.metrics_all()",
  );
  return rows.map(metricsFromRow).sort((a, b) => a.queue.localeCompare(b.queue));
}

/**
 * The registry's queues (darkroom.worker_queues) that do not exist in pgmq: empty when every
 * worker has its queue. Cheap: no counting.
 */
export async function missingQueues(db: Queryable): Promise<string[]> {
  const rows = await db.query<{ queue: string }>(
    `select w.queue from darkroom.worker_queues w
      where w.queue not in (select queue_name from pgmq.list_queues())`,
  );
  return rows.map((r) => r.queue);
}
