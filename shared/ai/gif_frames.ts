/**
 * @module ai/gif_frames — GIF block walking for the colour sample: cuts trailing garbage that
 * makes omggif refuse a whole file, and picks a frame worth sampling.
 */

/** Where one frame sits on the canvas. */
export interface FrameBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

const MAX_BLOCKS = 100_000;

/**
 * The GIF cut after its last complete block, with a trailer (0x3B) added when the file did not
 * end cleanly; the input itself when it did, or when it is not a GIF.
 */
export function trimGif(bytes: Uint8Array): Uint8Array {
  const end = lastCompleteBlockEnd(bytes);
  if (end === null || (end < bytes.length && bytes[end] === 0x3b)) return bytes;
  const out = new Uint8Array(end + 1);
  out.set(bytes.subarray(0, end));
  out[end] = 0x3b;
  return out;
}

/** Offset just past the last complete block; null when `bytes` is not a GIF. */
export function lastCompleteBlockEnd(bytes: Uint8Array): number | null {
  const sig = String.fromCharCode(...bytes.subarray(0, 6));
  if (bytes.length < 13 || (sig !== "GIF87a" && sig !== "GIF89a")) return null;
  let at = 13 + colorTableSize(bytes[10]);
  let good = Math.min(at, bytes.length);
  for (let n = 0; n < MAX_BLOCKS && at < bytes.length; n++) {
    const kind = bytes[at];
    let next: number | null = null;
    if (kind === 0x21) next = skipSubBlocks(bytes, at + 2);
    else if (kind === 0x2c && at + 10 <= bytes.length) {
      next = skipSubBlocks(bytes, at + 10 + colorTableSize(bytes[at + 9]) + 1);
    }
    if (next === null) break; // trailer, garbage or a truncated block
    at = good = next;
  }
  return good;
}

/** Index of the first frame covering at least half the canvas, else of the largest frame. */
export function pickFrame(frames: FrameBox[], canvasWidth: number, canvasHeight: number): number {
  const canvas = canvasWidth * canvasHeight;
  let largest = 0;
  for (let i = 0; i < frames.length; i++) {
    const area = frames[i].width * frames[i].height;
    if (area * 2 >= canvas) return i;
    if (area > frames[largest].width * frames[largest].height) largest = i;
  }
  return largest;
}

function colorTableSize(flags: number): number {
  return flags & 0x80 ? 3 * (1 << ((flags & 0x07) + 1)) : 0;
}

/** Offset past a chain of data sub-blocks ending in a zero-length block; null if truncated. */
function skipSubBlocks(bytes: Uint8Array, at: number): number | null {
  while (at < bytes.length) {
    const size = bytes[at];
    if (size === 0) return at + 1;
    at += size + 1;
  }
  return null;
}
