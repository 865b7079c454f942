/**
 * @module metadata/jpeg_segments — what a JPEG's APP1 segments carry, to tell "no EXIF" from
 * "an EXIF block that cannot be read" (exifr skips a bad block without a word).
 */

/** What one APP1 segment holds. */
export type App1Kind = "exif" | "exif-invalid" | "xmp" | "xmp-extension" | "other";

import { MAX_JPEG_SEGMENTS } from "../image_bounds.ts";

const XMP_ID = "http://ns.adobe.com/xap/1.0/\0";
const XMP_EXT_ID = "http://ns.adobe.com/xmp/extension/\0";

/** The kinds of the APP1 segments before the image data, in file order. */
export function jpegApp1Kinds(bytes: Uint8Array): App1Kind[] {
  const kinds: App1Kind[] = [];
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return kinds;
  let at = 2;
  for (let n = 0; n < MAX_JPEG_SEGMENTS && at + 4 <= bytes.length; n++) {
    if (bytes[at] !== 0xff) break;
    const marker = bytes[at + 1];
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      at += 2;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) break; // image data or end: no more metadata
    const length = (bytes[at + 2] << 8) | bytes[at + 3];
    if (length < 2) break;
    const end = Math.min(bytes.length, at + 2 + length);
    if (marker === 0xe1) kinds.push(app1Kind(bytes.subarray(at + 4, end)));
    at = at + 2 + length;
  }
  return kinds;
}

/** Classifies one APP1 payload (the bytes after the length field). */
export function app1Kind(payload: Uint8Array): App1Kind {
  if (startsWith(payload, "Exif\0")) {
    return isTiffBlock(payload.subarray(6)) ? "exif" : "exif-invalid";
  }
  if (startsWith(payload, XMP_ID)) return "xmp";
  if (startsWith(payload, XMP_EXT_ID)) return "xmp-extension";
  return "other";
}

/** True when `block` starts with a TIFF header whose first IFD lies inside the block. */
export function isTiffBlock(block: Uint8Array): boolean {
  if (block.length < 8) return false;
  const little = block[0] === 0x49 && block[1] === 0x49 && block[2] === 0x2a && block[3] === 0;
  const big = block[0] === 0x4d && block[1] === 0x4d && block[2] === 0 && block[3] === 0x2a;
  if (!little && !big) return false;
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const ifd0 = view.getUint32(4, little);
  if (ifd0 < 8 || ifd0 + 2 > block.length) return false;
  const entries = view.getUint16(ifd0, little);
  return entries > 0 && ifd0 + 2 + entries * 12 <= block.length;
}

/**
 * Problems with a JPEG's EXIF, from its APP1 kinds, as messages (empty when none): an EXIF block
 * whose TIFF header or first IFD is broken, or APP1 segments (the EXIF slot) none holding EXIF.
 */
export function jpegExifIssues(kinds: readonly App1Kind[]): string[] {
  const issues: string[] = [];
  if (kinds.includes("exif-invalid")) issues.push("EXIF block has no valid TIFF header or IFD0");
  if (kinds.includes("other")) issues.push("APP1 segment is neither EXIF nor XMP");
  if (kinds.length > 0 && !kinds.some((k) => k === "exif" || k === "exif-invalid")) {
    // The EXIF spec puts EXIF in APP1; readers that take APP1 for EXIF reject such files.
    issues.push("APP1 segment holds no EXIF block");
  }
  return issues;
}

function startsWith(bytes: Uint8Array, ascii: string): boolean {
  if (bytes.length < ascii.length) return false;
  for (let i = 0; i < ascii.length; i++) {
    if (bytes[i] !== ascii.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * The JPEG with its APP1 segments (EXIF, XMP) left out, everything else as it was; null when
 * `bytes` is not a JPEG or has none. For readers that only need the frame header but trip over
 * a broken EXIF block on the way (image-size reads the orientation from it).
 */
export function jpegWithoutApp1(bytes: Uint8Array): Uint8Array | null {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  const keep: Uint8Array[] = [bytes.subarray(0, 2)];
  let dropped = false;
  let at = 2;
  for (let n = 0; n < MAX_JPEG_SEGMENTS && at + 4 <= bytes.length; n++) {
    if (bytes[at] !== 0xff) break;
    const marker = bytes[at + 1];
    if (marker === 0xff || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      const step = marker === 0xff ? 1 : 2;
      keep.push(bytes.subarray(at, at + step));
      at += step;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) break;
    const length = (bytes[at + 2] << 8) | bytes[at + 3];
    if (length < 2) break;
    const end = Math.min(bytes.length, at + 2 + length);
    if (marker === 0xe1) dropped = true;
    else keep.push(bytes.subarray(at, end));
    at = end;
  }
  if (!dropped) return null;
  keep.push(bytes.subarray(at));
  const out = new Uint8Array(keep.reduce((n, k) => n + k.length, 0));
  let o = 0;
  for (const k of keep) {
    out.set(k, o);
    o += k.length;
  }
  return out;
}

/** The TIFF block of a JPEG's first EXIF APP1 segment (after "Exif\0\0"); null when none. */
export function jpegExifBlock(bytes: Uint8Array): Uint8Array | null {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  let at = 2;
  for (let n = 0; n < MAX_JPEG_SEGMENTS && at + 4 <= bytes.length; n++) {
    if (bytes[at] !== 0xff) break;
    const marker = bytes[at + 1];
    if (marker === 0xff || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      at += marker === 0xff ? 1 : 2;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) break;
    const length = (bytes[at + 2] << 8) | bytes[at + 3];
    if (length < 2) break;
    const end = Math.min(bytes.length, at + 2 + length);
    const payload = bytes.subarray(at + 4, end);
    if (marker === 0xe1 && startsWith(payload, "Exif\0")) return payload.subarray(6);
    at = end;
  }
  return null;
}
