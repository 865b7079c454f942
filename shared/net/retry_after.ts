/**
 * @module retry_after — how long a server asked us to wait: `retry-after-ms` (OpenAI) first,
 * then `Retry-After` as seconds or an HTTP date.
 */

/**
 * Seconds to wait according to `headers`, rounded up; undefined when they say nothing usable.
 *
 * @example
 * parseRetryAfter(new Headers({ "retry-after": "7" })); // 7
 */
export function parseRetryAfter(
  headers: Headers | undefined,
  now: number = Date.now(),
): number | undefined {
  const ms = Number.parseFloat(headers?.get("retry-after-ms") ?? "");
  if (Number.isFinite(ms) && ms >= 0) return Math.ceil(ms / 1000);
  const value = headers?.get("retry-after")?.trim();
  if (!value) return undefined;
  const seconds = /^\d+(\.\d+)?$/.test(value) ? Number(value) : (Date.parse(value) - now) / 1000;
  return Number.isFinite(seconds) ? Math.max(0, Math.ceil(seconds)) : undefined;
}
