/**
 * @module functions/analytics_worker — the `analytics-worker` function: keeps the analytics
 * rollups from every event. SQL only: no Hono, no decoder, no AI provider.
 */
import { edgeDeps } from "../edge.ts";
import { createSubscriberHandler } from "../workers/handler.ts";
import { analyticsSubscriber } from "../workers/analytics.ts";
import { type BaseDeps, type Handler, runnerDeps } from "./common.ts";

/** The `analytics-worker` function. */
export function createAnalyticsWorker(deps: BaseDeps): Handler {
  return createSubscriberHandler(
    runnerDeps(deps, "analytics-worker"),
    analyticsSubscriber(deps.db),
  );
}

/** The deployed `analytics-worker`, from the instance's environment. */
export function edgeAnalyticsWorker(base: BaseDeps = edgeDeps()): Handler {
  return createAnalyticsWorker(base);
}
