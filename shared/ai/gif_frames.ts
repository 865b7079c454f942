/**
 * @module ai/gif_frames — what omggif is handed for the colour sample: the GIF cut after its
 * last complete block (trailing garbage makes omggif refuse a whole file) and after its first
 * MAX_GIF_DECODE_FRAMES frames (omggif parses every frame it is given), and a frame worth
 * sampling.
 */
import { MAX_GIF_DECODE_FRAMES } from "../image_bounds.ts";
import { type FrameBox, walkGif } from "../metadata/gif_blocks.ts";

export type { FrameBox };

/**
 * The GIF cut after its last complete block, or after its `maxFrames`-th frame, with a trailer
 * (0x3B) added; the input itself when it ended cleanly within `maxFrames`, or is not a GIF.
 */
export function trimGif(bytes: Uint8Array, maxFrames = MAX_GIF_DECODE_FRAMES): Uint8Array {
  const keep = Math.max(1, maxFrames);
  const walk = walkGif(bytes, keep);
  if (walk === null) return bytes;
  const end = walk.frameCount > keep ? walk.frameEnds[keep - 1] : walk.end;
  if (end === walk.end && end < bytes.length && bytes[end] === 0x3b) return bytes;
  const out = new Uint8Array(end + 1);
  out.set(bytes.subarray(0, end));
  out[end] = 0x3b;
  return out;
}

/** Offset just past the last complete block; null when `bytes` is not a GIF. */
export function lastCompleteBlockEnd(bytes: Uint8Array): number | null {
  return walkGif(bytes, 0)?.end ?? null;
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
