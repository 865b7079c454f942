/**
 * @module ai/describe — tags and a caption from measured facts. Pure: the same facts always give
 * the same words, in the same order.
 */
import type { ColorName } from "./colors.ts";
import { type Shape, type SizeClass, timeOfDay } from "./facts.ts";

/** What was measured of one image. */
export interface ImageFacts {
  /** jpeg, png, ...; null when unknown. */
  format: string | null;
  /** Shape as displayed (EXIF orientation applied). */
  shape: Shape | null;
  size: SizeClass | null;
  /** Dominant colours, most frequent first. */
  colors: ColorName[];
  /** Brand tag ("nikon"). */
  brand: string | null;
  /** Camera as named in prose ("NIKON COOLPIX P6000"). */
  camera: string | null;
  /** Month name and hour of capture, local time. */
  taken: { month: string; hour: number } | null;
  geotagged: boolean;
}

const MIN_TAGS = 3;
const MAX_TAGS = 10;
const PADDING = ["image", "unknown-shape", "unknown-size"];
const SHAPE_WORDS: Record<Shape, string> = {
  landscape: "landscape",
  portrait: "portrait",
  square: "square",
  panorama: "panoramic",
};

/**
 * 3-10 lowercase unique tags in a fixed order: shape, size, colours (most frequent first),
 * camera brand, "geotagged", time of day, format; padded to 3 when too little is known.
 */
export function describeTags(facts: ImageFacts): string[] {
  const candidates = [
    facts.shape,
    facts.size,
    ...facts.colors,
    facts.brand,
    facts.geotagged ? "geotagged" : null,
    facts.taken ? timeOfDay(facts.taken.hour) : null,
    facts.format,
  ];
  const tags: string[] = [];
  const add = (word: string | null) => {
    const tag = word?.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
    if (tag && !tags.includes(tag)) tags.push(tag);
  };
  candidates.forEach(add);
  for (const word of PADDING) if (tags.length < MIN_TAGS) add(word);
  return tags.slice(0, MAX_TAGS);
}

/**
 * One plain sentence from the facts.
 *
 * @example
 * // "A landscape photo taken with a NIKON COOLPIX P6000 on an October afternoon, mostly green and blue, geotagged."
 */
export function describeCaption(facts: ImageFacts): string {
  const isPhoto = facts.camera !== null || facts.taken !== null;
  const noun = isPhoto ? "photo" : facts.format ? `${facts.format.toUpperCase()} image` : "image";
  const subject = facts.shape ? `${SHAPE_WORDS[facts.shape]} ${noun}` : noun;
  let sentence = `${article(subject)} ${subject}`;
  if (facts.camera) sentence += ` taken with ${article(facts.camera)} ${facts.camera}`;
  if (facts.taken) {
    const { month, hour } = facts.taken;
    sentence += `${facts.camera ? "" : " taken"} on ${article(month)} ${month} ${timeOfDay(hour)}`;
  }
  if (facts.colors.length > 0) sentence += `, mostly ${listOf(facts.colors)}`;
  if (facts.geotagged) sentence += ", geotagged";
  sentence += ".";
  return sentence.charAt(0).toUpperCase() + sentence.slice(1);
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? "an" : "a";
}

function listOf(words: readonly string[]): string {
  return words.length < 2
    ? words.join("")
    : `${words.slice(0, -1).join(", ")} and ${words[words.length - 1]}`;
}
