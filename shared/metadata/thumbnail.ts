/**
 * @module metadata/thumbnail — the preview a camera embedded in the EXIF block (IFD1), taken
 * out as it is: Darkroom transforms no image, so this is the only thumbnail it can offer.
 */
import exifr from "exifr";
import { imageSize } from "image-size";
import { MAX_THUMBNAIL_BYTES, MAX_THUMBNAIL_SIDE } from "../image_bounds.ts";
import { imageBoundsProblem } from "./bounds.ts";

export { MAX_THUMBNAIL_BYTES, MAX_THUMBNAIL_SIDE };

/** An embedded JPEG preview. */
export interface EmbeddedThumbnail {
  bytes: Uint8Array;
  contentType: "image/jpeg";
  width: number;
  height: number;
}

const WITH_IFD1 = new Set(["jpeg", "tiff", "heic", "heif", "avif"]);

/**
 * The embedded preview of an image, or null when it has none, or none that is a real, smaller
 * JPEG (some files' IFD1 points at the main image itself), or when the file crosses a decoder
 * bound (exifr is not run on it). Never throws.
 */
export async function extractThumbnail(
  bytes: Uint8Array,
  image: { format: string; width: number; height: number },
): Promise<EmbeddedThumbnail | null> {
  if (!WITH_IFD1.has(image.format)) return null;
  if (await imageBoundsProblem(bytes, image.format, image.width, image.height)) return null;
  let raw: Uint8Array | undefined;
  try {
    raw = await exifr.thumbnail(bytes);
  } catch {
    return null;
  }
  if (!raw || raw.byteLength < 4 || raw.byteLength > MAX_THUMBNAIL_BYTES) return null;
  const thumb = new Uint8Array(raw);
  if (thumb[0] !== 0xff || thumb[1] !== 0xd8 || thumb[2] !== 0xff) return null;
  let size: { width?: number; height?: number };
  try {
    size = imageSize(thumb);
  } catch {
    return null;
  }
  const { width, height } = size;
  if (!width || !height || Math.max(width, height) > MAX_THUMBNAIL_SIDE) return null;
  if (width * height >= image.width * image.height) return null;
  return { bytes: thumb, contentType: "image/jpeg", width, height };
}
