/**
 * @module tags — how a tag is written in the index (public.image_tags): trimmed, lower-case, at
 * most 64 characters. darkroom.normalise_tag() is the same rule in SQL. Pure.
 */

/** Longest tag the index keeps. */
export const MAX_TAG_LENGTH = 64;

/**
 * The indexed form of `tag`; "" when nothing is left.
 *
 * @example
 * normaliseTag("  Golden Hour "); // "golden hour"
 */
export function normaliseTag(tag: string): string {
  return tag.trim().toLowerCase().slice(0, MAX_TAG_LENGTH).trim();
}

/** Normalised, deduplicated, empty ones dropped, first occurrence first. */
export function normaliseTags(tags: readonly string[]): string[] {
  return [...new Set(tags.map(normaliseTag).filter((t) => t !== ""))];
}
