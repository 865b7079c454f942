/**
 * @module metadata/webp_exif — the EXIF and XMP chunks of a WebP (RIFF) file, which exifr 7.1.3
 * does not read itself: we cut them out and hand them to exifr.
 */
import { MAX_WEBP_CHUNKS } from "../image_bounds.ts";

/** The metadata chunks found in a WebP file; `undefined` when absent. */
export interface WebpMetadataChunks {
  /** The "EXIF" chunk payload as a TIFF block ("Exif\0\0" prefix, if any, removed). */
  exif?: Uint8Array;
  /** The "XMP " chunk payload (XML text). */
  xmp?: Uint8Array;
}

/** Finds the "EXIF" and "XMP " chunks of a WebP file; empty for anything else. */
export function webpMetadataChunks(bytes: Uint8Array): WebpMetadataChunks {
  const found: WebpMetadataChunks = {};
  if (bytes.length < 12 || fourcc(bytes, 0) !== "RIFF" || fourcc(bytes, 8) !== "WEBP") {
    return found;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const riffEnd = Math.min(bytes.length, 8 + view.getUint32(4, true));
  let at = 12;
  for (let n = 0; n < MAX_WEBP_CHUNKS && at + 8 <= riffEnd; n++) {
    const id = fourcc(bytes, at);
    const size = view.getUint32(at + 4, true);
    const start = at + 8;
    const end = Math.min(riffEnd, start + size);
    if (id === "EXIF" && !found.exif) found.exif = stripExifPrefix(bytes.subarray(start, end));
    if (id === "XMP " && !found.xmp) found.xmp = bytes.subarray(start, end);
    at = start + size + (size & 1); // chunks are padded to an even size
  }
  return found;
}

/** Removes the "Exif\0\0" header some writers put before the TIFF block. */
export function stripExifPrefix(block: Uint8Array): Uint8Array {
  const prefixed = block.length >= 6 && fourcc(block, 0) === "Exif" && block[4] === 0;
  return prefixed ? block.subarray(6) : block;
}

function fourcc(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
}
