/**
 * @module workers/analytics — the `analytics` subscriber: adds every event to the rollups (stage
 * latency histograms, counts per minute and hour, AI usage per day), each event at most once. A
 * batch goes in one statement (darkroom.record_analytics_batch: rollups, receipts and message
 * deletes in one transaction); one event at a time (darkroom.record_analytics) only when a batch
 * failed.
 */
import type { Queryable } from "../db.ts";
import type { SubscriberDefinition } from "../subscriber_runner.ts";

/** The analytics subscriber over `db`. */
export function analyticsSubscriber(db: Queryable): SubscriberDefinition {
  return {
    subscriber: "analytics",
    source: "analytics-worker",
    batchSize: 64,
    async handleBatch(jobs) {
      await db.query(
        `select darkroom.record_analytics_batch(p_msg_ids => $1::bigint[],
           p_event_ids => $2::uuid[], p_attempts => $3::integer[])`,
        [jobs.map((j) => j.msgId), jobs.map((j) => j.event.eventId), jobs.map((j) => j.attempt)],
      );
    },
    async handle(job) {
      const [{ counted }] = await db.query<{ counted: boolean }>(
        "select darkroom.record_analytics(p_event_id => $1::uuid) as counted",
        [job.event.eventId],
      );
      job.log.debug("event counted", { counted });
    },
  };
}
