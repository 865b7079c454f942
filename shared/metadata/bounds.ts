/**
 * @module metadata/bounds — the structural bounds of shared/image_bounds.ts checked on a whole
 * file, once, before any library decodes or parses it: one linear walk of the container (GIF
 * blocks, PNG chunks, JPEG markers and scans, TIFF IFDs, HEIF boxes, WebP chunks) with capped
 * counts, plus a capped inflate of PNG ancillary chunks.
 *
 * Policy: the metadata stage runs first and calls {@linkcode checkImageBounds}, so a hostile
 * file fails there, not retried: `corrupt_image` when the structure breaks a rule of its format
 * (a frame outside its canvas, a zero-sized box before the meta box), `too_large` when a count or
 * size passes a bound (more scans, chunks or IFD entries than allowed, an ancillary chunk that
 * inflates too far). Readers used later (the colour decode, the thumbnail) ask
 * {@linkcode imageBoundsProblem} and skip the work instead of throwing.
 */
import { StageError } from "../errors.ts";
import {
  MAX_ANIMATION_FRAMES,
  MAX_JPEG_SCANS,
  MAX_JPEG_SEGMENTS,
  MAX_PNG_ANCILLARY_BYTES,
  MAX_PNG_ANCILLARY_TOTAL_BYTES,
  MAX_PNG_CHUNKS,
  MAX_TOTAL_FRAME_PIXELS,
  MAX_WEBP_CHUNKS,
} from "../image_bounds.ts";
import { isBmff, walkHeif } from "./bmff_boxes.ts";
import { type FrameBox, walkGif } from "./gif_blocks.ts";
import { walkJpeg } from "./jpeg_scans.ts";
import { compressedPayload, inflatedSize, walkPng } from "./png_chunks.ts";
import { tiffProblem } from "./tiff_bounds.ts";
import { stripExifPrefix } from "./webp_exif.ts";

/** A crossed bound: the task error code it maps to and a message. */
export interface BoundsProblem {
  code: "corrupt_image" | "too_large";
  message: string;
}

/**
 * Throws `StageError("corrupt_image" | "too_large")` (not retryable) when the file crosses a
 * bound of shared/image_bounds.ts; `width` and `height` are the header's (readHeader).
 *
 * @example
 * const { width, height, format } = readHeader(bytes, maxPixels);
 * await checkImageBounds(bytes, format, width, height);
 */
export async function checkImageBounds(
  bytes: Uint8Array,
  format: string,
  width: number,
  height: number,
): Promise<void> {
  const problem = await imageBoundsProblem(bytes, format, width, height);
  if (problem) throw new StageError(problem.code, problem.message);
}

/** The first bound the file crosses, or null; never throws. */
export async function imageBoundsProblem(
  bytes: Uint8Array,
  format: string,
  width: number,
  height: number,
): Promise<BoundsProblem | null> {
  try {
    switch (format) {
      case "gif":
        return gifProblem(bytes, width, height);
      case "png":
        return await pngProblem(bytes, width, height);
      case "jpeg":
        return jpegProblem(bytes);
      case "tiff":
        return exifProblem([bytes]);
      case "webp":
        return webpProblem(bytes, width, height);
      default:
        if (!isBmff(bytes)) return null;
        return heifProblem(bytes);
    }
  } catch (cause) {
    // The walks read inside the bytes only; this is the belt to those braces.
    return problem("corrupt_image", `unreadable ${format} structure (${String(cause)})`);
  }
}

/** The HEIF box problem alone, for readHeader to ask before image-size walks the boxes. */
export function heifProblem(bytes: Uint8Array): BoundsProblem | null {
  const walk = walkHeif(bytes);
  if (walk.problem) return problem(walk.problem.code, walk.problem.message);
  return walk.exif ? exifProblem([walk.exif]) : null;
}

function gifProblem(bytes: Uint8Array, width: number, height: number): BoundsProblem | null {
  const walk = walkGif(bytes, MAX_ANIMATION_FRAMES);
  if (!walk) return null;
  if (walk.capped) return problem("too_large", "GIF has too many blocks");
  if (walk.frameCount > MAX_ANIMATION_FRAMES) {
    return problem("too_large", `GIF has over ${MAX_ANIMATION_FRAMES} frames`);
  }
  return framesProblem("GIF", walk.frames, width, height);
}

async function pngProblem(
  bytes: Uint8Array,
  width: number,
  height: number,
): Promise<BoundsProblem | null> {
  const walk = walkPng(bytes);
  if (!walk) return null;
  if (walk.capped) return problem("too_large", `PNG has over ${MAX_PNG_CHUNKS} chunks`);
  const frames: FrameBox[] = [];
  const exif: Uint8Array[] = [];
  let inflated = 0;
  for (const chunk of walk.chunks) {
    if (chunk.type === "fcTL" && chunk.data.length >= 20) {
      const v = new DataView(chunk.data.buffer, chunk.data.byteOffset, chunk.data.byteLength);
      frames.push({
        width: v.getUint32(4),
        height: v.getUint32(8),
        x: v.getUint32(12),
        y: v.getUint32(16),
      });
      if (frames.length > MAX_ANIMATION_FRAMES) {
        return problem("too_large", `PNG has over ${MAX_ANIMATION_FRAMES} frames`);
      }
    }
    if (chunk.type === "eXIf") exif.push(chunk.data);
    const zlib = compressedPayload(chunk);
    if (!zlib) continue;
    const limit = Math.min(MAX_PNG_ANCILLARY_BYTES, MAX_PNG_ANCILLARY_TOTAL_BYTES - inflated);
    const { size } = await inflatedSize([zlib], limit);
    if (size > limit) {
      return problem("too_large", `PNG ${chunk.type} chunk inflates past ${limit} bytes`);
    }
    inflated += size;
  }
  return framesProblem("PNG", frames, width, height) ?? exifProblem(exif);
}

function jpegProblem(bytes: Uint8Array): BoundsProblem | null {
  const walk = walkJpeg(bytes);
  if (!walk) return null;
  if (walk.scans > MAX_JPEG_SCANS) {
    return problem("too_large", `JPEG has over ${MAX_JPEG_SCANS} scans`);
  }
  if (walk.segments > MAX_JPEG_SEGMENTS) {
    return problem("too_large", `JPEG has over ${MAX_JPEG_SEGMENTS} segments`);
  }
  return exifProblem(walk.exif);
}

function webpProblem(bytes: Uint8Array, width: number, height: number): BoundsProblem | null {
  if (bytes.length < 12 || fourcc(bytes, 0) !== "RIFF" || fourcc(bytes, 8) !== "WEBP") return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const frames: FrameBox[] = [];
  const exif: Uint8Array[] = [];
  let at = 12;
  for (let n = 0; at + 8 <= bytes.length; n++) {
    if (n >= MAX_WEBP_CHUNKS) {
      return problem("too_large", `WebP has over ${MAX_WEBP_CHUNKS} chunks`);
    }
    const id = fourcc(bytes, at);
    const size = view.getUint32(at + 4, true);
    const body = bytes.subarray(at + 8, Math.min(bytes.length, at + 8 + size));
    if (id === "ANMF" && body.length >= 12) {
      frames.push({
        x: 2 * u24(body, 0),
        y: 2 * u24(body, 3),
        width: 1 + u24(body, 6),
        height: 1 + u24(body, 9),
      });
      if (frames.length > MAX_ANIMATION_FRAMES) {
        return problem("too_large", `WebP has over ${MAX_ANIMATION_FRAMES} frames`);
      }
    }
    if (id === "EXIF") exif.push(stripExifPrefix(body));
    at += 8 + size + (size & 1);
  }
  return framesProblem("WebP", frames, width, height) ?? exifProblem(exif);
}

/** Every frame inside the canvas, and all frames' pixels within MAX_TOTAL_FRAME_PIXELS. */
function framesProblem(
  kind: string,
  frames: FrameBox[],
  width: number,
  height: number,
): BoundsProblem | null {
  let total = 0;
  for (const [i, f] of frames.entries()) {
    if (f.x + f.width > width || f.y + f.height > height) {
      return problem(
        "corrupt_image",
        `${kind} frame ${i + 1} (${f.width}x${f.height} at ${f.x},${f.y}) does not fit its ` +
          `${width}x${height} canvas`,
      );
    }
    total += f.width * f.height;
    if (total > MAX_TOTAL_FRAME_PIXELS) {
      return problem("too_large", `${kind} frames have over ${MAX_TOTAL_FRAME_PIXELS} pixels`);
    }
  }
  return null;
}

function exifProblem(blocks: Uint8Array[]): BoundsProblem | null {
  for (const block of blocks) {
    const why = tiffProblem(block);
    if (why) return problem("too_large", `EXIF/TIFF ${why}`);
  }
  return null;
}

function problem(code: BoundsProblem["code"], detail: string): BoundsProblem {
  return { code, message: `Cannot decode image: ${detail}` };
}

function fourcc(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
}

function u24(bytes: Uint8Array, at: number): number {
  return bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16);
}
