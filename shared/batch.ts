/**
 * @module batch — what the stage runner and the subscriber runner share: reading a batch from a
 * queue with a visibility timeout (archiving messages that lack their id), and handling the
 * claimed messages with bounded concurrency.
 */
import type { Queryable } from "./db.ts";
import type { Logger } from "./log.ts";
import { Queue, type QueueMessage } from "./queue.ts";
import { isUuid } from "./uuid.ts";

/** A batch read from a queue: the usable messages, and how many were archived as malformed. */
export interface ReadBatch<T> {
  messages: QueueMessage<T>[];
  /** Messages read in all. */
  read: number;
  /** Messages archived because `idField` was not a UUID. */
  malformed: number;
}

/**
 * Reads up to `qty` messages from `queueName`, hidden for `vtSeconds`. A message whose
 * `idField` is not a UUID can never succeed (and would make the claim statement's uuid[] cast
 * fail for the whole batch): it is archived for inspection.
 */
export async function readBatch<T extends Record<string, unknown>>(
  db: Queryable,
  log: Logger,
  queueName: string,
  idField: keyof T & string,
  vtSeconds: number,
  qty: number,
): Promise<ReadBatch<T>> {
  const queue = new Queue<T>(db, queueName);
  const read = await queue.read(vtSeconds, qty);
  const messages = read.filter((m) => isUuid(m.message?.[idField]));
  for (const bad of read.filter((m) => !messages.includes(m))) {
    log.warn(`message without ${idField} archived`, { queue: queueName, msgId: bad.msgId });
    await queue.archive(bad.msgId);
  }
  return { messages, read: read.length, malformed: read.length - messages.length };
}

/** Runs `fn` over `items` with at most `limit` at once. */
export async function forEachLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(lanes);
}
