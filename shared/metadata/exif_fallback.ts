/**
 * @module metadata/exif_fallback — a second EXIF reader for the blocks exifr refuses. exifr drops
 * a whole IFD when one of its entries is malformed (a Sony DSC-HX5V writes an IFD0 entry of type
 * 0), and with IFD0 go the pointers to the Exif and GPS IFDs: make, model, date, orientation and
 * GPS are all lost though every one of them is readable. ExifReader skips the bad entry and reads
 * the rest; its answer is turned into exifr's raw block shape, for the tags Darkroom normalises,
 * so one bad entry costs only itself.
 */
import ExifReader from "exifreader";

/** exifr-shaped blocks (`ifd0`, `exif`, `gps`) of the tags Darkroom normalises. */
export type FallbackBlocks = Partial<Record<"ifd0" | "exif" | "gps", Record<string, unknown>>>;

/** Which block each tag belongs to in exifr's output (ExifReader merges IFD0 and Exif IFD). */
const TAGS: Record<string, keyof FallbackBlocks> = {
  Make: "ifd0",
  Model: "ifd0",
  Orientation: "ifd0",
  Software: "ifd0",
  DateTime: "ifd0",
  DateTimeOriginal: "exif",
  CreateDate: "exif",
  DateTimeDigitized: "exif",
  OffsetTimeOriginal: "exif",
  GPSLatitude: "gps",
  GPSLatitudeRef: "gps",
  GPSLongitude: "gps",
  GPSLongitudeRef: "gps",
};

/** exifr's names where ExifReader's differ. */
const EXIFR_NAMES: Record<string, string> = { DateTimeDigitized: "CreateDate" };

/**
 * Reads `tiff` (a TIFF/EXIF block, or a whole TIFF file) with ExifReader; returns the blocks it
 * found, empty when it found nothing. Never throws.
 *
 * @example
 * const blocks = readExifFallback(jpegExifBlock(bytes)!);
 * blocks.ifd0?.Make; // "SONY"
 */
export function readExifFallback(tiff: Uint8Array): FallbackBlocks {
  let tags: Record<string, { value?: unknown }>;
  try {
    const copy = tiff.slice().buffer;
    const loaded = ExifReader.load(copy, { expanded: true, includeUnknown: false });
    // Expanded, the IFD0, Exif IFD and GPS IFD tags are all under `exif`.
    tags = (loaded.exif ?? {}) as typeof tags;
  } catch {
    return {};
  }
  const blocks: FallbackBlocks = {};
  for (const [name, block] of Object.entries(TAGS)) {
    const value = rawValue(name, tags[name]?.value);
    if (value === undefined) continue;
    (blocks[block] ??= {})[EXIFR_NAMES[name] ?? name] = value;
  }
  return blocks;
}

/** ExifReader's value as exifr gives it raw: text as a string, rationals as numbers. */
function rawValue(name: string, value: unknown): unknown {
  if (value === undefined || value === null) return undefined;
  if (name === "GPSLatitude" || name === "GPSLongitude") {
    if (!Array.isArray(value)) return undefined;
    const parts = value.map(rational);
    return parts.every((n) => n !== undefined) ? parts : undefined;
  }
  if (typeof value === "number") return value;
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value.join("");
  if (typeof value === "string") return value;
  return undefined;
}

function rational(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (Array.isArray(v) && v.length === 2 && typeof v[0] === "number" && typeof v[1] === "number") {
    return v[1] === 0 ? undefined : v[0] / v[1];
  }
  return undefined;
}
