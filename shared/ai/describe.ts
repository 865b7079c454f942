/**
 * @module ai/describe — tags and a caption from measured facts, each word traceable to what
 * produced it: the file's metadata (aspect ratio, camera, capture time, GPS) or the colour
 * measurement. Nothing here claims to have seen the picture's content. Pure: the same facts
 * always give the same words, in the same order.
 */
import type { ColorName } from "./colors.ts";
import { type Aspect, timeOfDay } from "./facts.ts";
import type { TagSource } from "./types.ts";

/** What was measured of one image. */
export interface ImageFacts {
  /** Aspect ratio as displayed (EXIF orientation applied); null when the size is unknown. */
  aspect: Aspect | null;
  /** Dominant colours, hues first. */
  colors: ColorName[];
  /** Where the colours were measured: the image, or the camera's embedded preview. */
  colourFrom: "image" | "embedded-thumbnail" | null;
  /** Why no colours were measured; null when they were. */
  colourReason: string | null;
  /** Brand tag ("nikon"). */
  brand: string | null;
  /** Camera as named in prose ("NIKON COOLPIX P6000"). */
  camera: string | null;
  /** Month name and hour of capture, local time. */
  taken: { month: string; hour: number } | null;
  geotagged: boolean;
}

/** Tags and what produced each. */
export interface DescribedTags {
  tags: string[];
  tagSources: Record<string, TagSource>;
}

const MAX_TAGS = 10;

/**
 * 3-10 lowercase unique tags in a fixed order, each with its source: the aspect ratio
 * (metadata), the colours (colour), camera brand, "geotagged" and time of day of capture
 * (metadata). Each of the three kinds that is missing says so instead ("unknown-aspect",
 * "colours-not-measured", "no-camera-metadata"), so there are always at least three tags.
 */
export function describeTags(facts: ImageFacts): DescribedTags {
  const camera = [
    facts.brand,
    facts.geotagged ? "geotagged" : null,
    facts.taken ? timeOfDay(facts.taken.hour) : null,
  ].filter((tag): tag is string => tag !== null);
  const candidates: [string | null, TagSource][] = [
    [facts.aspect ?? "unknown-aspect", "metadata"],
    ...(facts.colors.length > 0 ? facts.colors : ["colours-not-measured"])
      .map((c): [string, TagSource] => [c, "colour"]),
    ...(camera.length > 0 ? camera : [facts.camera ? "camera-model-only" : "no-camera-metadata"])
      .map((c): [string, TagSource] => [c, "metadata"]),
  ];
  const tags: string[] = [];
  const tagSources: Record<string, TagSource> = {};
  for (const [word, source] of candidates) {
    const tag = word?.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
    if (!tag || tag in tagSources || tags.length === MAX_TAGS) continue;
    tags.push(tag);
    tagSources[tag] = source;
  }
  return { tags, tagSources };
}

/**
 * One sentence that says what it is based on.
 *
 * @example
 * // "Colour and metadata summary: wide aspect; mostly green and gray; taken with a NIKON
 * //  COOLPIX P6000 on an October afternoon; geotagged."
 */
export function describeCaption(facts: ImageFacts): string {
  const parts: string[] = [];
  parts.push(facts.aspect ? facts.aspect.replace(/-/g, " ") : "aspect unknown");
  if (facts.colors.length > 0) {
    const from = facts.colourFrom === "embedded-thumbnail" ? " (from the embedded preview)" : "";
    parts.push(`mostly ${listOf(facts.colors)}${from}`);
  } else {
    parts.push(`colours not measured${facts.colourReason ? ` (${facts.colourReason})` : ""}`);
  }
  let taken = "";
  if (facts.camera) taken += `taken with ${article(facts.camera)} ${facts.camera}`;
  if (facts.taken) {
    const { month, hour } = facts.taken;
    taken += `${facts.camera ? " " : "taken "}on ${article(month)} ${month} ${timeOfDay(hour)}`;
  }
  if (taken) parts.push(taken);
  if (facts.geotagged) parts.push("geotagged");
  if (!taken && !facts.geotagged) parts.push("no camera metadata");

  return `Colour and metadata summary: ${parts.join("; ")}.`;
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? "an" : "a";
}

function listOf(words: readonly string[]): string {
  return words.length < 2
    ? words.join("")
    : `${words.slice(0, -1).join(", ")} and ${words[words.length - 1]}`;
}
