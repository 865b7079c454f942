/**
 * @module rate_limit — the per-caller token bucket on task creation (kept in Postgres, shared
 * by every function instance).
 */
import type { Caller } from "./auth.ts";
import type { Queryable } from "./db.ts";
import { ApiError } from "./errors.ts";

/** Bucket size and refill. */
export interface RateLimitOptions {
  /** Tokens refilled per minute (RATE_LIMIT_PER_MINUTE). */
  perMinute: number;
  /** Bucket capacity: the largest burst (RATE_LIMIT_BURST). */
  burst: number;
}

/**
 * Whose bucket a request spends: the user for authenticated callers; the client address for
 * anon-key callers (all of them share one bucket when no address is known). service_role is not
 * limited (null).
 */
export function rateLimitSubject(caller: Caller, clientAddress: string | null): string | null {
  if (caller.role === "service_role") return null;
  if (caller.role === "authenticated") return `user:${caller.userId}`;
  return `anon:${clientAddress ?? "unknown"}`;
}

/** Takes `cost` tokens or throws 429 rate_limited with Retry-After. */
export async function takeRateLimitTokens(
  db: Queryable,
  subject: string,
  cost: number,
  opts: RateLimitOptions,
): Promise<void> {
  const [row] = await db.query<
    { allowed: boolean; remaining: number; retry_after_seconds: number }
  >(
    `select * from darkroom.take_rate_limit_tokens(p_subject => $1, p_cost => $2::integer,
       p_capacity => $3::integer, p_refill_per_second => $4::float8)`,
    [subject, cost, Math.max(opts.burst, cost), opts.perMinute / 60],
  );
  if (!row.allowed) {
    throw new ApiError(
      429,
      "rate_limited",
      `Too many tasks: try again in ${row.retry_after_seconds} s`,
      { "retry-after": String(row.retry_after_seconds) },
    );
  }
}
