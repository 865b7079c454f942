/**
 * @module metadata/exif_normalize — pure mapping from exifr's raw output to the normalised
 * {@linkcode ImageMetadata}: trimmed make/model, ISO local takenAt, orientation 1-8, signed GPS
 * degrees, and a JSON-safe `exif` subset. No I/O, so it is tested with plain objects.
 */
import type { GpsPosition, ImageMetadata } from "./types.ts";
import { cleanString, toJsonSafe } from "./exif_json.ts";

/** What the reader got from exifr, before normalising. */
export interface RawMetadata {
  /** exifr's output for the TIFF/EXIF/GPS/IPTC/PNG blocks (`mergeOutput: false`), by block. */
  blocks?: Record<string, unknown>;
  /** exifr's output for the XMP packet, by namespace. */
  xmp?: Record<string, unknown>;
  /** Why the metadata is incomplete; non-empty makes `partial` true. */
  issues?: string[];
}

/** exifr blocks copied into `exif`; ifd1 (thumbnail), icc, makerNote and the like are not. */
const KEPT_BLOCKS = ["ifd0", "exif", "gps", "interop", "iptc", "ihdr", "jfif"] as const;
const MAX_TEXT = 100;

const ORIENTATION_NAMES: Record<string, number> = {
  "horizontal (normal)": 1,
  "mirror horizontal": 2,
  "rotate 180": 3,
  "mirror vertical": 4,
  "mirror horizontal and rotate 270 cw": 5,
  "rotate 90 cw": 6,
  "mirror horizontal and rotate 90 cw": 7,
  "rotate 270 cw": 8,
};

/** Normalises exifr's output into {@linkcode ImageMetadata}. */
export function normalizeMetadata(raw: RawMetadata): ImageMetadata {
  const ifd0 = record(raw.blocks?.ifd0);
  const exif = record(raw.blocks?.exif);
  const issues = raw.issues ?? [];
  return {
    make: cleanText(ifd0.Make),
    model: cleanText(ifd0.Model),
    takenAt: parseTakenAt(
      exif.DateTimeOriginal ?? ifd0.DateTimeOriginal,
      exif.OffsetTimeOriginal,
    ),
    orientation: parseOrientation(ifd0.Orientation),
    gps: parseGps(record(raw.blocks?.gps)),
    exif: buildExifJson(raw.blocks, raw.xmp, issues),
    partial: issues.length > 0,
  };
}

/** A trimmed, NUL-free, length-capped text value; null when absent or empty. */
export function cleanText(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const text = cleanString(value).slice(0, MAX_TEXT).trim();
  return text === "" ? null : text;
}

/**
 * EXIF "YYYY:MM:DD HH:MM:SS" as ISO local time "YYYY-MM-DDTHH:MM:SS", with `offset`
 * ("+02:00", from OffsetTimeOriginal) appended when valid; null when absent or invalid.
 * A JS Date (revived by exifr in the machine's zone) is read back with local getters.
 */
export function parseTakenAt(value: unknown, offset?: unknown): string | null {
  let local: string | null = null;
  if (value instanceof Date && !Number.isNaN(value.getTime())) {
    const p = (n: number) => String(n).padStart(2, "0");
    local = `${String(value.getFullYear()).padStart(4, "0")}-${p(value.getMonth() + 1)}-${
      p(value.getDate())
    }T${p(value.getHours())}:${p(value.getMinutes())}:${p(value.getSeconds())}`;
  } else if (typeof value === "string") {
    const m = cleanString(value).match(/^(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})/);
    if (!m) return null;
    const [year, month, day, hour, minute, second] = m.slice(1).map(Number);
    const valid = year > 0 && month >= 1 && month <= 12 && day >= 1 && day <= 31 &&
      hour <= 23 && minute <= 59 && second <= 60;
    if (!valid) return null;
    local = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}`;
  }
  if (local === null) return null;
  const zone = typeof offset === "string" ? cleanString(offset) : "";
  return /^[+-](?:[01]\d|2[0-3]):[0-5]\d$/.test(zone) ? local + zone : local;
}

/** EXIF orientation as an integer 1-8 (also from exifr's translated names); null otherwise. */
export function parseOrientation(value: unknown): number | null {
  if (typeof value === "string") {
    const named = ORIENTATION_NAMES[cleanString(value).toLowerCase()];
    return named ?? parseOrientation(Number(value));
  }
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 8
    ? value
    : null;
}

/** Degrees from an EXIF rational triple [deg, min, sec] (or a plain number); null if invalid. */
export function dmsToDegrees(value: unknown): number | null {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (!Array.isArray(value) && !ArrayBuffer.isView(value)) return null;
  const parts = Array.from(value as ArrayLike<unknown>).map(Number);
  if (parts.length === 0 || parts.length > 3 || parts.some((n) => !Number.isFinite(n) || n < 0)) {
    return null;
  }
  const [deg, min = 0, sec = 0] = parts;
  return deg + min / 60 + sec / 3600;
}

/**
 * Signed decimal degrees from exifr's GPS block (S and W negative). Null when absent, out of
 * range, or exactly 0,0 (what receivers without a fix write).
 */
export function parseGps(gps: Record<string, unknown>): GpsPosition | null {
  let lat = dmsToDegrees(gps.GPSLatitude);
  let lon = dmsToDegrees(gps.GPSLongitude);
  if (lat !== null && lon !== null) {
    if (refIs(gps.GPSLatitudeRef, "S")) lat = -lat;
    if (refIs(gps.GPSLongitudeRef, "W")) lon = -lon;
  } else {
    // exifr's own signed `latitude`/`longitude`, when the raw tags are not there
    lat = finite(gps.latitude);
    lon = finite(gps.longitude);
  }
  if (lat === null || lon === null) return null;
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180 || (lat === 0 && lon === 0)) return null;
  return { lat, lon };
}

/** The JSON-safe `exif` object: `errors` (why partial), kept exifr blocks by name, XMP by namespace. */
export function buildExifJson(
  blocks: Record<string, unknown> | undefined,
  xmp: Record<string, unknown> | undefined,
  issues: string[] = [],
): Record<string, unknown> {
  const raw: Record<string, unknown> = { errors: issues.slice(0, 10) };
  for (const name of KEPT_BLOCKS) raw[name] = blocks?.[name];
  const namespaces = { ...record(xmp) };
  delete namespaces.xmlns;
  raw.xmp = namespaces;
  // One budget for the whole object, spent in key order: errors and EXIF facts before XMP.
  return record(toJsonSafe(raw, { maxDepth: 7, maxTotal: 65536 }));
}

function record(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? value as Record<string, unknown>
    : {};
}

function finite(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function refIs(ref: unknown, letter: "S" | "W"): boolean {
  return typeof ref === "string" && cleanString(ref).toUpperCase().startsWith(letter);
}
