/**
 * @module functions/notification_worker — the `notification-worker` function: signed webhooks
 * to tasks' callbackUrls. It carries standardwebhooks and the address policy; no Hono, no
 * decoder, no AI provider.
 */
import type { Resolver } from "../net/address_policy.ts";
import { edgeDeps } from "../edge.ts";
import { createSubscriberHandler } from "../workers/handler.ts";
import { notifierSubscriber } from "../workers/notifier.ts";
import { type BaseDeps, type Handler, runnerDeps } from "./common.ts";

/** What the notification worker needs besides {@linkcode BaseDeps}; all optional (tests). */
export interface NotificationWorkerDeps extends BaseDeps {
  /** fetch used for deliveries; default the global one. */
  fetch?: typeof fetch;
  /** Hostname resolver; default the system's. */
  resolve?: Resolver;
  /** Seconds before the next try; default the retry policy's backoff. */
  webhookRetryDelaySeconds?: (attempt: number, retryAfterSeconds?: number) => number;
}

/** The `notification-worker` function. */
export function createNotificationWorker(deps: NotificationWorkerDeps): Handler {
  return createSubscriberHandler(
    runnerDeps(deps, "notification-worker"),
    notifierSubscriber({
      db: deps.db,
      secret: deps.config.WEBHOOK_SECRET,
      allowPrivateNetwork: deps.config.ALLOW_PRIVATE_NETWORK,
      fetch: deps.fetch,
      resolve: deps.resolve,
      retryDelaySeconds: deps.webhookRetryDelaySeconds,
    }),
  );
}

/** The deployed `notification-worker`, from the instance's environment. */
export function edgeNotificationWorker(base: BaseDeps = edgeDeps()): Handler {
  return createNotificationWorker(base);
}
