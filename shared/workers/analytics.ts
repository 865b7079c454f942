/**
 * @module workers/analytics — the `analytics` subscriber: adds every event to the rollups (stage
 * latency histograms, counts per minute and hour, AI usage per day) through
 * darkroom.record_analytics(), which counts an event at most once.
 */
import type { Queryable } from "../db.ts";
import type { SubscriberDefinition } from "../subscriber_runner.ts";

/** The analytics subscriber over `db`. */
export function analyticsSubscriber(db: Queryable): SubscriberDefinition {
  return {
    subscriber: "analytics",
    source: "analytics-worker",
    batchSize: 64,
    async handle(job) {
      const [{ counted }] = await db.query<{ counted: boolean }>(
        "select darkroom.record_analytics(p_event_id => $1::uuid) as counted",
        [job.event.eventId],
      );
      job.log.debug("event counted", { counted });
    },
  };
}
