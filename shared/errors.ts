/**
 * @module errors — typed domain errors. The HTTP boundary and the stage runner turn them into
 * `{error: {code, message}}` bodies and task error codes; nothing else inspects messages.
 */

/** Task error codes of the design: what a failed task reports in `error.code`. */
export const TASK_ERROR_CODES = [
  "invalid_url",
  "blocked_address",
  "http_status",
  "dns_error",
  "connection_error",
  "timeout",
  "too_large",
  "not_an_image",
  "corrupt_image",
  "ai_error",
  "cancelled",
  "internal",
] as const;

/** One of {@linkcode TASK_ERROR_CODES}. */
export type TaskErrorCode = typeof TASK_ERROR_CODES[number];

/**
 * A stage could not finish. `retryable` errors are tried again with backoff (through the queue
 * message's visibility timeout) until MAX_ATTEMPTS; the others fail the task at once.
 *
 * @example
 * throw new StageError("too_large", "Cannot download image: over 20971520 bytes", false);
 */
export class StageError extends Error {
  override readonly name = "StageError";
  readonly code: TaskErrorCode;
  readonly retryable: boolean;
  /** Seconds to wait before the next try, when the remote said so (Retry-After). */
  readonly retryAfterSeconds?: number;

  constructor(
    code: TaskErrorCode,
    message: string,
    retryable = false,
    options: { retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = code;
    this.retryable = retryable;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** An HTTP-facing error: becomes `{error: {code, message}}` with `status`. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly status: number;
  readonly code: string;
  readonly headers?: Record<string, string>;

  constructor(status: number, code: string, message: string, headers?: Record<string, string>) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}
