/**
 * @module metadata/dimensions — width, height and format from the image header (image-size),
 * checked against a pixel budget before anything decodes. A HEIF/AVIF's boxes are walked first
 * (capped) and image-size gets the file only up to its meta box: it looks for a "clap" box after
 * every "ispe", walking the rest of its input each time.
 */
import { imageSize } from "image-size";
import { StageError } from "../errors.ts";
import { isBmff, walkHeif } from "./bmff_boxes.ts";
import { jpegWithoutApp1 } from "./jpeg_segments.ts";

/** What the header says, before any pixel is decoded. */
export interface HeaderInfo {
  /** Pixels of the encoded image (not rotated by EXIF orientation). */
  width: number;
  height: number;
  /** jpeg, png, webp, gif, tiff, heic, heif, avif, or image-size's name for other formats. */
  format: string;
}

const HEIF_BRANDS: Record<string, string> = {
  avif: "avif",
  avis: "avif",
  heic: "heic",
  heix: "heic",
  hevc: "heic",
  hevx: "heic",
  heim: "heic",
  heis: "heic",
};

/**
 * The format of an ISO-BMFF (HEIF family) file from its ftyp box: the major brand, else the
 * first compatible brand we know ("mif1" files are usually HEIC or AVIF underneath).
 */
export function heifFormat(bytes: Uint8Array): string {
  const ascii = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.length < 16 || ascii(4) !== "ftyp") return "heif";
  const boxSize = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
  const end = Math.min(bytes.length, boxSize >= 16 ? boxSize : 16, 256);
  const major = HEIF_BRANDS[ascii(8)];
  if (major) return major;
  for (let at = 16; at + 4 <= end; at += 4) {
    const brand = HEIF_BRANDS[ascii(at)];
    if (brand) return brand;
  }
  return "heif";
}

/** Our format name for an image-size type ("jpg" -> "jpeg", HEIF brands -> heic/heif/avif). */
export function formatName(type: string, bytes: Uint8Array): string {
  switch (type) {
    case "jpg":
      return "jpeg";
    case "jxl-stream":
      return "jxl";
    case "avif":
    case "heic":
    case "heif":
    case "heix":
    case "hevc":
    case "hevx":
    case "mif1":
    case "msf1":
      return heifFormat(bytes);
    default:
      return type.toLowerCase();
  }
}

/**
 * Reads width, height and format from the header. Throws `StageError("corrupt_image")` when no
 * header can be read, `StageError("too_large")` when width x height exceeds `maxPixels`.
 *
 * @example
 * const { width, height, format } = readHeader(bytes, 100_000_000);
 */
export function readHeader(bytes: Uint8Array, maxPixels: number): HeaderInfo {
  let size: { width?: number; height?: number; type?: string };
  try {
    size = sizeOf(headerBytes(bytes));
  } catch (cause) {
    if (cause instanceof StageError) throw cause;
    throw new StageError("corrupt_image", "Cannot read image header", false, { cause });
  }
  const { width, height, type } = size;
  if (!isPositiveInt(width) || !isPositiveInt(height) || !type) {
    throw new StageError("corrupt_image", "Cannot read image header: no valid dimensions");
  }
  const pixels = width * height;
  if (pixels > maxPixels) {
    throw new StageError(
      "too_large",
      `Cannot process image: ${width}x${height} is ${pixels} pixels, over ${maxPixels}`,
    );
  }
  return { width, height, format: formatName(type, bytes) };
}

/**
 * image-size's answer; for a JPEG whose EXIF block it cannot read (it follows the block's
 * offsets to find the orientation, and throws when they point outside), the answer for the
 * same file without its APP1 segments: a broken EXIF block must not cost the dimensions.
 */
function sizeOf(bytes: Uint8Array): { width?: number; height?: number; type?: string } {
  try {
    return imageSize(bytes);
  } catch (err) {
    const stripped = jpegWithoutApp1(bytes);
    if (!stripped) throw err;
    return imageSize(stripped);
  }
}

/** What image-size is handed: all of it, or a HEIF up to its meta box once its boxes are sound. */
function headerBytes(bytes: Uint8Array): Uint8Array {
  if (!isBmff(bytes)) return bytes;
  const walk = walkHeif(bytes);
  if (walk.problem) {
    throw new StageError(walk.problem.code, `Cannot read image header: ${walk.problem.message}`);
  }
  return walk.metaEnd === null ? bytes : bytes.subarray(0, walk.metaEnd);
}

function isPositiveInt(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n > 0;
}
