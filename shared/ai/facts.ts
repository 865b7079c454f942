/**
 * @module ai/facts — pure classifiers for what can honestly be read of an image's metadata:
 * displayed aspect ratio, camera brand, and month and time of day of capture. (No size class
 * and no file format: those restate the file, they say nothing about the picture.)
 */

/**
 * Aspect ratio as displayed, named for what it is (a ratio), not for what the picture shows
 * ("landscape" would read as a view of land).
 */
export type Aspect =
  | "wide-aspect"
  | "tall-aspect"
  | "square-aspect"
  | "very-wide-aspect"
  | "very-tall-aspect";
/** Part of the day a photo was taken in. */
export type TimeOfDay = "morning" | "afternoon" | "evening" | "night";

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

/** Brand tags for makes that do not start with the brand's usual short name. */
const BRANDS: [RegExp, string][] = [
  [/^konica[\s_-]*minolta/i, "konica-minolta"],
  [/^eastman kodak|^kodak/i, "kodak"],
  [/^fuji/i, "fujifilm"],
  [/^olympus|^om digital/i, "olympus"],
  [/^asahi|^pentax|^ricoh imaging/i, "pentax"],
  [/^matsushita|^panasonic/i, "panasonic"],
  [/^hewlett|^hp\b/i, "hp"],
  [/^lg\b|^lge\b/i, "lg"],
  [/^phase one/i, "phase-one"],
];

/** Width and height as displayed: EXIF orientations 5-8 swap them. */
export function displayedSize(
  width: number,
  height: number,
  orientation: number | null,
): { width: number; height: number } {
  return orientation !== null && orientation >= 5 && orientation <= 8
    ? { width: height, height: width }
    : { width, height };
}

/** Aspect from displayed dimensions: square within 5 %, "very" from 2:1 either way. */
export function aspectOf(width: number, height: number): Aspect | null {
  if (!(width > 0 && height > 0)) return null;
  const ratio = width / height;
  if (ratio >= 2) return "very-wide-aspect";
  if (ratio <= 0.5) return "very-tall-aspect";
  if (Math.abs(ratio - 1) <= 0.05) return "square-aspect";
  return ratio > 1 ? "wide-aspect" : "tall-aspect";
}

/** Lowercase brand tag of an EXIF make ("NIKON CORPORATION" -> "nikon"); null when none. */
export function cameraBrand(make: string | null): string | null {
  const text = make?.trim() ?? "";
  if (text === "") return null;
  for (const [pattern, brand] of BRANDS) if (pattern.test(text)) return brand;
  const word = text.toLowerCase().match(/[a-z0-9]+/)?.[0] ?? "";
  return word.length >= 2 && !/^\d+$/.test(word) ? word : null;
}

/** How to name the camera in prose: the model, prefixed by the make unless it already is. */
export function cameraLabel(make: string | null, model: string | null): string | null {
  if (!model) return make;
  if (!make) return model;
  const firstWord = make.split(/\s+/)[0].toLowerCase();
  return model.toLowerCase().startsWith(firstWord) ? model : `${make} ${model}`;
}

/** Month and hour of an ISO local `takenAt` ("2008-10-22T16:38:20"); null when unreadable. */
export function takenParts(takenAt: string | null): { month: string; hour: number } | null {
  const m = takenAt?.match(/^\d{4}-(\d{2})-\d{2}T(\d{2}):/);
  if (!m) return null;
  const month = MONTHS[Number(m[1]) - 1];
  const hour = Number(m[2]);
  return month && hour <= 23 ? { month, hour } : null;
}

/** Morning 5-11 h, afternoon 12-16 h, evening 17-20 h, night otherwise. */
export function timeOfDay(hour: number): TimeOfDay {
  if (hour >= 5 && hour < 12) return "morning";
  if (hour >= 12 && hour < 17) return "afternoon";
  if (hour >= 17 && hour < 21) return "evening";
  return "night";
}
