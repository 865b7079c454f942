/**
 * @module metadata/gif_blocks — one linear walk over a GIF's blocks: the canvas, each frame's
 * box and where each complete block ends. Counts are capped (MAX_GIF_BLOCKS), so the walk costs
 * at most one pass over the bytes whatever the file declares.
 */
import { MAX_GIF_BLOCKS } from "../image_bounds.ts";

/** Where one frame sits on the canvas. */
export interface FrameBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** What the walk found. */
export interface GifWalk {
  width: number;
  height: number;
  /** Boxes of the first `maxFrames` frames. */
  frames: FrameBox[];
  /** Offset just past each of those frames. */
  frameEnds: number[];
  /** Frames seen (all of them, also past `maxFrames`). */
  frameCount: number;
  /** Offset just past the last complete block. */
  end: number;
  /** True when the walk stopped at MAX_GIF_BLOCKS, not at the trailer or the end. */
  capped: boolean;
}

/** Walks a GIF's blocks, keeping the first `maxFrames` frame boxes; null when not a GIF. */
export function walkGif(bytes: Uint8Array, maxFrames: number): GifWalk | null {
  if (bytes.length < 13 || !isGifSignature(bytes)) return null;
  const walk: GifWalk = {
    width: bytes[6] | (bytes[7] << 8),
    height: bytes[8] | (bytes[9] << 8),
    frames: [],
    frameEnds: [],
    frameCount: 0,
    end: 0,
    capped: false,
  };
  let at = 13 + colorTableSize(bytes[10]);
  walk.end = Math.min(at, bytes.length);
  let n = 0;
  for (; n < MAX_GIF_BLOCKS && at < bytes.length; n++) {
    const kind = bytes[at];
    let next: number | null = null;
    if (kind === 0x21) next = skipSubBlocks(bytes, at + 2);
    else if (kind === 0x2c && at + 10 <= bytes.length) {
      next = skipSubBlocks(bytes, at + 10 + colorTableSize(bytes[at + 9]) + 1);
      if (next !== null) {
        if (walk.frames.length < maxFrames) {
          walk.frames.push({
            x: u16(bytes, at + 1),
            y: u16(bytes, at + 3),
            width: u16(bytes, at + 5),
            height: u16(bytes, at + 7),
          });
          walk.frameEnds.push(next);
        }
        walk.frameCount++;
      }
    }
    if (next === null) break; // trailer, garbage or a truncated block
    at = walk.end = next;
  }
  walk.capped = n >= MAX_GIF_BLOCKS && at < bytes.length && bytes[at] !== 0x3b;
  return walk;
}

function isGifSignature(bytes: Uint8Array): boolean {
  const sig = String.fromCharCode(...bytes.subarray(0, 6));
  return sig === "GIF87a" || sig === "GIF89a";
}

function u16(bytes: Uint8Array, at: number): number {
  return bytes[at] | (bytes[at + 1] << 8);
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
