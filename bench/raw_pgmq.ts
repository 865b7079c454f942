/**
 * @module bench/raw_pgmq — the ceiling pgmq itself allows for the pipeline's message flow, on the
 * same database and pool: N messages sent in batches as the api does, then moved through one
 * queue per stage by one consumer per stage reading the stage's batch size, handling each message
 * with the stage's concurrency and, in one statement (one transaction, as complete_stage does),
 * deleting it and sending it on to the next queue. No task rows, no events: the queue alone.
 */
import type { Queryable } from "../shared/db.ts";
import { forEachLimited } from "../shared/batch.ts";

/** One stage's consumer settings: the stage worker's own. */
export interface RawStage {
  batchSize: number;
  concurrency: number;
  vtSeconds: number;
  /** Invocations of the stage's worker at once (the scheduler's WORKER_CONCURRENCY). */
  invocations?: number;
}

/** Options of {@linkcode runRawPgmq}. */
export interface RawPgmqOptions {
  /** Messages sent into the first queue. */
  n: number;
  stages: RawStage[];
  /** Messages per send batch (the api's batch size). */
  sendBatch: number;
  /** A message like the stage messages ({taskId, traceId}). */
  message: Record<string, unknown>;
}

/** What {@linkcode runRawPgmq} measured. */
export interface RawPgmqResult {
  /** send + read + delete cycles in all: n per stage. */
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  /** Seconds until the last batch was sent (the send side alone, alongside the consumers). */
  sendSeconds: number;
}

/** Runs the raw cycle on queues bench_raw_1..k, created for it and dropped after. */
export async function runRawPgmq(db: Queryable, opts: RawPgmqOptions): Promise<RawPgmqResult> {
  const k = opts.stages.length;
  const queues = opts.stages.map((_, i) => `bench_raw_${i + 1}`);
  for (const q of queues) {
    await db.query("select pgmq.create($1)", [q]);
    await db.query("select pgmq.purge_queue($1)", [q]);
  }
  const done = new Array(k).fill(0);
  const wakers: (Array<() => void>)[] = queues.map(() => []);
  const wake = (i: number) => {
    for (const w of wakers[i]?.splice(0) ?? []) w();
  };
  const waitFor = (i: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 50);
      wakers[i].push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  const body = JSON.stringify(opts.message);
  const started = performance.now();
  let sendSeconds = 0;
  const producer = (async () => {
    for (let sent = 0; sent < opts.n; sent += opts.sendBatch) {
      const count = Math.min(opts.sendBatch, opts.n - sent);
      await db.query(
        "select pgmq.send_batch($1, array(select jsonb_array_elements($2::jsonb)))",
        [queues[0], `[${new Array(count).fill(body).join(",")}]`],
      );
      wake(0);
    }
    sendSeconds = (performance.now() - started) / 1000;
  })();
  const consumer = async (i: number) => {
    const s = opts.stages[i];
    while (done[i] < opts.n) {
      const rows = await db.query<{ msg_id: number; message: unknown }>(
        "select msg_id, message from pgmq.read($1, $2::integer, $3::integer)",
        [queues[i], s.vtSeconds, s.batchSize],
      );
      if (rows.length === 0) {
        await waitFor(i);
        continue;
      }
      await forEachLimited(rows, s.concurrency, async (r) => {
        if (i < k - 1) {
          await db.query(
            "select pgmq.delete($1, $2::bigint), pgmq.send($3, $4::jsonb)",
            [queues[i], r.msg_id, queues[i + 1], JSON.stringify(r.message)],
          );
        } else {
          await db.query("select pgmq.delete($1, $2::bigint)", [queues[i], r.msg_id]);
        }
        done[i]++;
      });
      wake(i + 1);
    }
    for (const w of wakers[i].splice(0)) w();
  };
  const consumers = opts.stages.flatMap((s, i) =>
    Array.from({ length: Math.max(1, s.invocations ?? 1) }, () => consumer(i))
  );
  await Promise.all([producer, ...consumers]);
  const seconds = (performance.now() - started) / 1000;
  for (const q of queues) await db.query("select pgmq.drop_queue($1)", [q]);
  const messages = opts.n * k;
  return { messages, seconds, messagesPerSecond: messages / seconds, sendSeconds };
}
