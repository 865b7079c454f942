/**
 * @module retry_policy — what happens after a stage throws: retry later, or fail now. Pure.
 */
import { StageError, type TaskErrorCode } from "./errors.ts";

/** The decision for one failed try. */
export type RetryDecision =
  | { action: "retry"; delaySeconds: number; code: TaskErrorCode; message: string }
  | { action: "fail"; code: TaskErrorCode; message: string };

/** Longest wait between two tries, in seconds. */
export const MAX_BACKOFF_SECONDS = 300;

/**
 * Exponential backoff for try number `attempt` (1-based): 2, 4, 8, ... seconds, capped at
 * {@linkcode MAX_BACKOFF_SECONDS}, with up to 20 % jitter from `random` (0..1). A Retry-After
 * from the remote wins when it is longer.
 */
export function backoffSeconds(
  attempt: number,
  retryAfterSeconds?: number,
  random: () => number = Math.random,
): number {
  const base = Math.min(MAX_BACKOFF_SECONDS, 2 ** Math.max(1, attempt));
  const jittered = Math.round(base * (1 + 0.2 * random()));
  const wait = Math.max(jittered, Math.ceil(retryAfterSeconds ?? 0));
  return Math.min(wait, 3600);
}

/**
 * Decides what to do after try number `attempt` of `maxAttempts` threw `error`. Non-retryable
 * StageErrors fail at once; retryable ones (and unexpected errors, reported as `internal`) are
 * retried until the last attempt.
 */
export function decideRetry(
  error: unknown,
  attempt: number,
  maxAttempts: number,
  random?: () => number,
): RetryDecision {
  const known = error instanceof StageError;
  const code: TaskErrorCode = known ? error.code : "internal";
  const message = known ? error.message : "Internal error while processing the task";
  const retryable = known ? error.retryable : true;
  if (!retryable || attempt >= maxAttempts) return { action: "fail", code, message };
  const retryAfter = known ? error.retryAfterSeconds : undefined;
  return {
    action: "retry",
    delaySeconds: backoffSeconds(attempt, retryAfter, random),
    code,
    message,
  };
}
