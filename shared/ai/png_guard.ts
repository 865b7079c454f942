/**
 * @module ai/png_guard — what fast-png is handed: a decompression-bomb check before it inflates
 * the image data in one go (streamed through DecompressionStream, stopped as soon as it yields
 * more than the header's dimensions allow), and the PNG cut down to its critical chunks, so no
 * ancillary chunk (an iCCP that inflates to gigabytes) reaches it.
 */

import { MAX_PNG_CHUNKS } from "../image_bounds.ts";
import { inflatedSize, walkPng } from "../metadata/png_chunks.ts";

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const KEPT_CHUNKS = new Set(["IHDR", "PLTE", "tRNS", "IDAT", "IEND"]);

/** Bytes of filtered scanlines a PNG of this header inflates to, plus interlace slack. */
export function expectedPngBytes(
  width: number,
  height: number,
  bitDepth: number,
  colorType: number,
): number | null {
  const channels = CHANNELS[colorType];
  if (!channels || width <= 0 || height <= 0) return null;
  const rowBytes = Math.ceil((width * channels * bitDepth) / 8);
  const raw = height * (1 + rowBytes);
  return raw + Math.ceil(raw / 8) + 65536; // Adam7 adds filter bytes per pass
}

/** The concatenated IDAT payloads and the IHDR fields of a PNG; null when it is not one. */
export function pngImageData(
  bytes: Uint8Array,
):
  | { width: number; height: number; bitDepth: number; colorType: number; idat: Uint8Array[] }
  | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 33 || view.getUint32(0) !== 0x89504e47 || view.getUint32(12) !== 0x49484452) {
    return null;
  }
  const header = {
    width: view.getUint32(16),
    height: view.getUint32(20),
    bitDepth: bytes[24],
    colorType: bytes[25],
  };
  const idat: Uint8Array[] = [];
  let at = 8;
  for (let n = 0; n < MAX_PNG_CHUNKS && at + 12 <= bytes.length; n++) {
    const length = view.getUint32(at);
    const type = view.getUint32(at + 4);
    if (type === 0x49444154) {
      idat.push(bytes.subarray(at + 8, Math.min(bytes.length, at + 8 + length)));
    }
    if (type === 0x49454e44) break; // IEND
    at += 12 + length;
  }
  return { ...header, idat };
}

/** True when the PNG's image data inflates to no more than its header allows. */
export async function pngInflatesWithinHeader(bytes: Uint8Array): Promise<boolean> {
  const png = pngImageData(bytes);
  if (!png || png.idat.length === 0) return false;
  const limit = expectedPngBytes(png.width, png.height, png.bitDepth, png.colorType);
  if (limit === null) return false;
  const { size, valid } = await inflatedSize(png.idat, limit);
  return valid && size <= limit;
}

/**
 * The PNG rebuilt from its critical chunks only (IHDR, PLTE, tRNS, IDAT, IEND): fast-png inflates
 * an iCCP profile with no limit and reads tEXt, none of which a colour sample needs. Null when
 * it is not a PNG.
 */
export function criticalPng(bytes: Uint8Array): Uint8Array | null {
  const walk = walkPng(bytes);
  if (!walk) return null;
  const kept: Uint8Array[] = [bytes.subarray(0, 8)];
  let seenHeader = false;
  for (const chunk of walk.chunks) {
    if (!KEPT_CHUNKS.has(chunk.type) || (chunk.type === "IHDR" && seenHeader)) continue;
    seenHeader ||= chunk.type === "IHDR";
    kept.push(bytes.subarray(chunk.offset, chunk.offset + 12 + chunk.data.length));
    if (chunk.type === "IEND") break;
  }
  const out = new Uint8Array(kept.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of kept) (out.set(part, at), at += part.length);
  return out;
}
