/**
 * @module sniff — what an image really is, from its magic bytes (file-type), never from the
 * declared Content-Type or the URL's extension.
 */
import { fileTypeFromBuffer } from "file-type";

/** A sniffed image type: its MIME type and usual file extension (without the dot). */
export interface ImageType {
  mime: string;
  ext: string;
}

/**
 * The image MIME types the pipeline accepts. `image/apng` is an animated PNG, still a valid PNG
 * to every PNG reader. HEIF/AVIF image sequences and camera RAW formats are left out.
 */
export const ACCEPTED_IMAGE_MIME_TYPES: ReadonlySet<string> = new Set([
  "image/jpeg",
  "image/png",
  "image/apng",
  "image/webp",
  "image/gif",
  "image/tiff",
  "image/heic",
  "image/heif",
  "image/avif",
  "image/bmp",
]);

/**
 * Sniffs `bytes` and returns their image type, or null when they are not one of
 * {@linkcode ACCEPTED_IMAGE_MIME_TYPES} (HTML, PDF, an unknown format, too few bytes).
 *
 * @example
 * const type = await sniffImageType(bytes); // { mime: "image/jpeg", ext: "jpg" } or null
 */
export async function sniffImageType(bytes: Uint8Array): Promise<ImageType | null> {
  if (bytes.byteLength === 0) return null;
  // A parser error on malformed bytes means "not a type we can vouch for", not a crash.
  const found = await fileTypeFromBuffer(bytes).catch(() => undefined);
  if (!found || !ACCEPTED_IMAGE_MIME_TYPES.has(found.mime)) return null;
  return { mime: found.mime, ext: found.ext };
}
