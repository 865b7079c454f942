/**
 * @module metadata/png_chunks — one linear walk over a PNG's chunks (capped at MAX_PNG_CHUNKS),
 * the zlib payload of its compressed ancillary chunks, and a streaming inflate that stops as
 * soon as it passes a limit, so a bomb costs the limit, not what it declares.
 */
import { MAX_PNG_CHUNKS } from "../image_bounds.ts";

/** One chunk: its type and where its data lies (cut at the end of the file). */
export interface PngChunk {
  type: string;
  /** Offset of the chunk's length field. */
  offset: number;
  /** Data, cut at the end of the file. */
  data: Uint8Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** True when `bytes` start with the PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && SIGNATURE.every((b, i) => bytes[i] === b);
}

/**
 * The chunks of a PNG, through the whole file as exifr walks it (also past IEND); null when not
 * a PNG. `capped` when there were more than MAX_PNG_CHUNKS.
 */
export function walkPng(bytes: Uint8Array): { chunks: PngChunk[]; capped: boolean } | null {
  if (!isPng(bytes)) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: PngChunk[] = [];
  let at = 8;
  while (at + 8 <= bytes.length) {
    if (chunks.length >= MAX_PNG_CHUNKS) return { chunks, capped: true };
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    chunks.push({
      type,
      offset: at,
      data: bytes.subarray(at + 8, Math.min(bytes.length, at + 8 + length)),
    });
    at += 12 + length;
  }
  return { chunks, capped: false };
}

/**
 * The zlib stream of a compressed ancillary chunk (iCCP, zTXt, compressed iTXt); null for other
 * chunks and uncompressed or malformed iTXt.
 */
export function compressedPayload(chunk: PngChunk): Uint8Array | null {
  const { type, data } = chunk;
  if (type !== "iCCP" && type !== "zTXt" && type !== "iTXt") return null;
  // Without a NUL in the first 80 bytes exifr still reads an iCCP, from byte 82: so do we.
  const nul = data.subarray(0, 80).indexOf(0);
  const keywordEnd = nul < 0 ? 80 : nul;
  if (type !== "iTXt") return data.subarray(keywordEnd + 2);
  if (data[keywordEnd + 1] !== 1) return null; // iTXt not compressed
  let at = keywordEnd + 3;
  for (let nul = 0; nul < 2; nul++) { // language tag, translated keyword
    const end = data.indexOf(0, at);
    if (end < 0) return null;
    at = end + 1;
  }
  return data.subarray(at);
}

/** Deflate's largest ratio (258-byte matches in ~2 bits): a piece of n bytes yields <= n x this. */
const MAX_DEFLATE_RATIO = 1032;
/** How far past the limit one piece may take the inflate (1 KB of input at the largest ratio). */
const OVERSHOOT = 1024 * MAX_DEFLATE_RATIO;

/**
 * Bytes the zlib `parts` inflate to, counting no further than ~1 MB past `limit`: the input is
 * fed in pieces no piece of which can inflate past that even at deflate's largest ratio (a
 * transform stream inflates a whole input chunk at once, whatever its reader wants), and the
 * inflate stops as soon as it passes `limit`. `valid` is false when the stream broke before.
 */
export async function inflatedSize(
  parts: Uint8Array[],
  limit: number,
): Promise<{ size: number; valid: boolean }> {
  const inflater = new DecompressionStream("deflate");
  const writer = inflater.writable.getWriter();
  const reader = inflater.readable.getReader();
  let total = 0;
  const feeding = (async () => {
    for (const part of parts) {
      for (let at = 0; at < part.length;) {
        const piece = Math.max(1024, Math.floor((limit - total + OVERSHOOT) / MAX_DEFLATE_RATIO));
        await writer.write(part.slice(at, at + piece));
        at += piece;
      }
    }
    await writer.close();
  })().catch((error) => writer.abort(error).catch(() => {})); // the reader sees it and stops
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { size: total, valid: true };
      total += value.length;
      if (total > limit) return { size: total, valid: true };
    }
  } catch {
    return { size: total, valid: false }; // a reader of this stream fails there too
  } finally {
    reader.cancel().catch(() => {});
    writer.abort().catch(() => {});
    await feeding;
  }
}
