/**
 * @module uuid — the one UUID check of Darkroom (JWT subjects, task ids in paths and queries).
 */

/**
 * A UUID in its canonical text form: 8-4-4-4-12 hex digits, either case, any version or variant
 * (Postgres's uuid type takes them all, so a stricter check would 400 ids the database holds).
 */
// No regex flag: the OpenAPI document carries this pattern, and JSON Schema patterns have none.
export const UUID_PATTERN =
  /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * True when `value` matches {@linkcode UUID_PATTERN}.
 *
 * @example
 * isUuid("7B0C2E1A-0000-4000-8000-000000000001"); // true
 * isUuid("not-a-uuid"); // false
 */
export function isUuid(value: unknown): value is string {
  return typeof value === "string" && UUID_PATTERN.test(value);
}
