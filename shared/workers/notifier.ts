/**
 * @module workers/notifier — the `notification` subscriber: POSTs task.completed, task.failed and
 * task.cancelled (the INEvent as JSON) to the task's callbackUrl, signed per Standard Webhooks
 * (`webhook-id` = eventId, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`),
 * under the downloads' address policy checked again at delivery time; a redirect is not
 * followed. Every attempt is a row of public.deliveries.
 */
import { Webhook } from "standardwebhooks";
import type { Queryable } from "../db.ts";
import { StageError, type TaskErrorCode } from "../errors.ts";
import { assertUrlAllowed, type Resolver } from "../net/address_policy.ts";
import { parseRetryAfter } from "../net/retry_after.ts";
import { timeoutSignal } from "../batch.ts";
import type { EventJob, SubscriberDefinition } from "../subscriber_runner.ts";

/** What the notifier needs. */
export interface NotifierOptions {
  db: Queryable;
  /** WEBHOOK_SECRET (`whsec_…`); without it every delivery fails with that reason. */
  secret?: string;
  /** ALLOW_PRIVATE_NETWORK: callbacks may reach private addresses; metadata stays blocked. */
  allowPrivateNetwork: boolean;
  /** Time budget of one POST, in ms. Default 10000. */
  timeoutMs?: number;
  /** fetch to use; default the global one. */
  fetch?: typeof fetch;
  /** Hostname resolver; default the system's. */
  resolve?: Resolver;
  /** Seconds before the next try; default the retry policy's backoff (Retry-After honoured). */
  retryDelaySeconds?: (attempt: number, retryAfterSeconds?: number) => number;
}

/** User-Agent of deliveries. */
export const WEBHOOK_USER_AGENT = "Darkroom-Webhooks/1.0";

/** A failed attempt, with what public.deliveries records of it. */
export class DeliveryError extends StageError {
  constructor(
    code: TaskErrorCode,
    message: string,
    retryable: boolean,
    readonly url: string,
    readonly durationMs: number,
    readonly responseStatus: number | null = null,
    options: { retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super(code, message, retryable, options);
  }
}

/** The notifier over `opts.db`. */
export function notifierSubscriber(opts: NotifierOptions): SubscriberDefinition {
  const record = (
    job: EventJob,
    url: string,
    status: "delivered" | "retrying" | "failed",
    fields: { responseStatus: number | null; durationMs: number; error: string | null },
    nextAttemptSeconds: number | null,
  ) =>
    opts.db.query(
      `select darkroom.record_delivery(p_event_id => $1::uuid, p_url => $2,
         p_attempt => $3::integer, p_status => $4, p_response_status => $5::integer,
         p_duration_ms => $6::integer, p_error => $7,
         p_next_attempt_at => now() + make_interval(secs => $8::integer))`,
      [
        job.event.eventId,
        url,
        job.attempt,
        status,
        fields.responseStatus,
        fields.durationMs,
        fields.error,
        nextAttemptSeconds,
      ],
    );

  return {
    subscriber: "notification",
    source: "notification-worker",
    batchSize: 16,
    timeoutMs: 30_000,
    visibilityTimeoutSeconds: 60,
    retryDelaySeconds: opts.retryDelaySeconds,
    async handle(job) {
      if (!job.event.taskId) return;
      const [task] = await opts.db.query<{ callback_url: string | null }>(
        "select t.callback_url from public.tasks t where t.id = $1::uuid",
        [job.event.taskId],
      );
      // GUARD: no callbackUrl (or the task is gone): nobody to tell.
      if (!task?.callback_url) return;
      const url = task.callback_url;
      const started = performance.now();
      const elapsed = () => Math.round(performance.now() - started);
      const fail = (code: TaskErrorCode, message: string, retryable: boolean, extra = {}) =>
        new DeliveryError(code, message, retryable, url, elapsed(), null, extra);
      if (!opts.secret) {
        throw fail("internal", "Cannot deliver webhook: WEBHOOK_SECRET is not set", false);
      }
      // MUST run at delivery time, not only when the task was created: DNS may answer
      // differently now.
      try {
        await assertUrlAllowed(new URL(url), { ...opts, signal: job.signal });
      } catch (err) {
        if (!(err instanceof StageError)) throw err;
        const message = err.message.replace("Cannot download image", "Cannot deliver webhook");
        throw fail(err.code, message, err.retryable, { cause: err });
      }
      const body = JSON.stringify(job.event);
      const sentAt = new Date();
      const signature = new Webhook(opts.secret).sign(job.event.eventId, sentAt, body);
      let res: Response;
      const timeout = timeoutSignal(opts.timeoutMs ?? 10_000);
      try {
        res = await (opts.fetch ?? globalThis.fetch)(url, {
          method: "POST",
          // A redirect is an answer, not an instruction: following it would leave the checked host.
          redirect: "manual",
          headers: {
            "content-type": "application/json",
            "user-agent": WEBHOOK_USER_AGENT,
            "webhook-id": job.event.eventId,
            "webhook-timestamp": String(Math.floor(sentAt.getTime() / 1000)),
            "webhook-signature": signature,
          },
          body,
          signal: AbortSignal.any([job.signal, timeout.signal]),
        });
        await res.body?.cancel();
      } catch (err) {
        const timedOut = (err as Error)?.name === "TimeoutError" || job.signal.aborted;
        throw timedOut
          ? fail("timeout", "Cannot deliver webhook: timed out", true, { cause: err })
          : fail("http_status", "Cannot deliver webhook: connection failed", true, { cause: err });
      } finally {
        timeout.clear();
      }
      if (res.status < 200 || res.status > 299) {
        const redirect = res.status >= 300 && res.status < 400
          ? " (redirects are not followed)"
          : "";
        throw new DeliveryError(
          "http_status",
          `Cannot deliver webhook: status ${res.status}${redirect}`,
          true,
          url,
          elapsed(),
          res.status,
          { retryAfterSeconds: parseRetryAfter(res.headers) },
        );
      }
      await record(job, url, "delivered", {
        responseStatus: res.status,
        durationMs: elapsed(),
        error: null,
      }, null);
    },
    async onFailure(job, decision, error) {
      // Only an attempt that reached the point of having a URL is a delivery.
      if (!(error instanceof DeliveryError)) return;
      const retry = decision.action === "retry";
      await record(job, error.url, retry ? "retrying" : "failed", {
        responseStatus: error.responseStatus,
        durationMs: error.durationMs,
        error: error.message,
      }, retry ? decision.delaySeconds : null);
    },
  };
}
