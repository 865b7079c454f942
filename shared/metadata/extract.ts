/**
 * @module metadata/extract — what the metadata stage learns from one image: dimensions and
 * format from the header, the file's structure checked against the decoder bounds
 * (shared/image_bounds.ts), then EXIF/GPS/IPTC/XMP normalised. Metadata never fails the stage;
 * only an unreadable header or a hostile structure (corrupt_image) or too many pixels, scans,
 * chunks or inflated bytes (too_large) do.
 */
import { StageError } from "../errors.ts";
import { checkImageBounds } from "./bounds.ts";
import { readHeader } from "./dimensions.ts";
import { normalizeMetadata } from "./exif_normalize.ts";
import { readRawMetadata } from "./exif_read.ts";
import type { ExtractedImage } from "./types.ts";

/** Options of {@linkcode extractImage}. */
export interface ExtractOptions {
  /** Largest width x height accepted (MAX_IMAGE_PIXELS); checked before anything decodes. */
  maxPixels: number;
}

/**
 * Reads dimensions, format and normalised metadata of an image. Throws
 * `StageError("corrupt_image")` without a readable header, `StageError("too_large")` over
 * `maxPixels`, either of them when the file crosses a decoder bound ({@linkcode checkImageBounds});
 * a missing or broken metadata block only sets `metadata.partial`.
 *
 * @example
 * const image = await extractImage(bytes, { maxPixels: 100_000_000 });
 * image.metadata.takenAt; // "2008-10-22T16:38:20"
 */
export async function extractImage(
  bytes: Uint8Array,
  opts: ExtractOptions,
): Promise<ExtractedImage> {
  const { width, height, format } = readHeader(bytes, opts.maxPixels);
  await checkImageBounds(bytes, format, width, height);
  let raw;
  try {
    raw = await readRawMetadata(bytes, format, { boundsChecked: true });
  } catch (error) {
    // readRawMetadata catches exifr's errors; this is the belt to its braces.
    if (error instanceof StageError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    raw = { issues: [`Cannot read metadata: ${message.slice(0, 200)}`] };
  }
  return { width, height, format, metadata: normalizeMetadata(raw) };
}
