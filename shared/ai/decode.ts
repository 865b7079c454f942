/**
 * @module ai/decode — a small RGBA decode for colour measurement, only where it is cheap: a
 * JPEG's EXIF thumbnail, else a small JPEG (jpeg-js), PNG (fast-png) or GIF frame (omggif); for
 * other formats (TIFF, AVIF, HEIC, WebP: no pure-JS decoder here) only an embedded EXIF JPEG
 * preview, else nothing, with the reason. Pure JS, bounded to fit an edge function's CPU and memory (shared/image_bounds.ts). Never
 * throws: anything it cannot decode cheaply is `null` (no colour tags), including a file that
 * crosses a structural bound; the metadata stage, which runs first, has already failed such a
 * file with corrupt_image or too_large, so this only meets one when called on its own.
 *
 * Each library gets only input it handles within bounds: jpeg-js a JPEG whose scans x blocks
 * are counted first (each scan visits every block of its components, however few bytes it
 * has); fast-png only the critical chunks, once IDAT is known to inflate within the header's
 * size; omggif at most MAX_GIF_DECODE_FRAMES frames, each inside the canvas.
 */
import exifr from "exifr";
import jpeg from "jpeg-js";
import { convertIndexedToRgb, decode as decodePng } from "fast-png";
import omggif from "omggif";
import {
  MAX_DECODE_PIXELS,
  MAX_JPEG_COMPONENTS,
  MAX_JPEG_DECODE_BLOCKS,
  MAX_JPEG_DECODE_MEMORY_MB,
  MAX_JPEG_DECODE_PIXELS,
  MAX_JPEG_SCANS,
} from "../image_bounds.ts";
import { imageBoundsProblem } from "../metadata/bounds.ts";
import { walkJpeg } from "../metadata/jpeg_scans.ts";
import { type FrameBox, pickFrame, trimGif } from "./gif_frames.ts";
import { criticalPng, pngInflatesWithinHeader } from "./png_guard.ts";

export { MAX_DECODE_PIXELS, MAX_JPEG_DECODE_PIXELS };

/** Decoded pixels, 4 bytes (RGBA) each. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Also bounds a thumbnail, whose size the header does not tell. */
const JPEG_LIMITS = {
  maxResolutionInMP: MAX_JPEG_DECODE_PIXELS / 1e6,
  maxMemoryUsageInMB: MAX_JPEG_DECODE_MEMORY_MB,
};

interface GifReaderLike {
  width: number;
  height: number;
  numFrames(): number;
  frameInfo(i: number): FrameBox;
  decodeAndBlitFrameRGBA(i: number, pixels: Uint8Array): void;
}
const { GifReader } = omggif as unknown as { GifReader: new (b: Uint8Array) => GifReaderLike };

/** Decoded pixels and where they came from, or why there are none. */
export type ColourPixels =
  | { image: RgbaImage; from: "image" | "embedded-thumbnail"; reason: null }
  | { image: null; from: null; reason: string };

/** Formats decoded here in full; others only through an embedded EXIF preview. */
const DECODED_FORMATS = ["jpeg", "png", "gif"];

/**
 * RGBA pixels for colour measurement, or null when the format has no cheap decoder here, the
 * image has more pixels than the limits (`width`/`height` are the header's), a PNG's data
 * would inflate past what its header allows (a decompression bomb), a JPEG's scans would visit
 * too many blocks, or the file crosses a structural bound (a GIF frame outside its canvas).
 */
export async function decodeForColors(
  bytes: Uint8Array,
  format: string,
  width: number,
  height: number,
): Promise<RgbaImage | null> {
  return (await pixelsForColours(bytes, format, width, height)).image;
}

/**
 * {@linkcode decodeForColors} with where the pixels came from (the image, or the camera's
 * embedded JPEG preview, tried first for a JPEG and the only way for a TIFF, AVIF, HEIC or
 * WebP), or a plain-words reason there are none. Never throws.
 */
export async function pixelsForColours(
  bytes: Uint8Array,
  format: string,
  width: number,
  height: number,
): Promise<ColourPixels> {
  const name = format.toUpperCase();
  try {
    if (!DECODED_FORMATS.includes(format)) {
      const thumb = await jpegThumbnail(bytes);
      return thumb
        ? { image: thumb, from: "embedded-thumbnail", reason: null }
        : none(`no ${name} decoder in the offline provider and no embedded preview`);
    }
    if (await imageBoundsProblem(bytes, format, width, height)) {
      return none(`the ${name} file crosses a decoding bound`);
    }
    const tooLarge = none(`the ${name} image is too large to decode within the CPU budget`);
    switch (format) {
      case "jpeg": {
        const thumb = await jpegThumbnail(bytes);
        if (thumb) return { image: thumb, from: "embedded-thumbnail", reason: null };
        if (width * height > MAX_JPEG_DECODE_PIXELS) return tooLarge;
        return image(decodeJpeg(bytes), name);
      }
      case "png": {
        if (width * height > MAX_DECODE_PIXELS) return tooLarge;
        const critical = criticalPng(bytes);
        if (!critical || !await pngInflatesWithinHeader(critical)) {
          return none("the PNG's chunks are unreadable or would inflate past its header's size");
        }
        return image(decodePngRgba(critical), name);
      }
      default:
        if (width * height > MAX_DECODE_PIXELS) return tooLarge;
        return image(decodeGifFrame(bytes), name);
    }
  } catch {
    return none(`the ${name} image could not be decoded`);
  }
}

function image(decoded: RgbaImage | null, name: string): ColourPixels {
  return decoded
    ? { image: decoded, from: "image", reason: null }
    : none(`the ${name} image is not cheaply decodable (a layout this provider skips)`);
}

function none(reason: string): ColourPixels {
  return { image: null, from: null, reason };
}

async function jpegThumbnail(bytes: Uint8Array): Promise<RgbaImage | null> {
  try {
    const thumb = await exifr.thumbnail(bytes);
    return thumb && thumb.length > 0 ? decodeJpeg(new Uint8Array(thumb)) : null;
  } catch {
    return null;
  }
}

/** jpeg-js's output, or null when its work would pass the bounds (counted before it starts). */
function decodeJpeg(bytes: Uint8Array): RgbaImage | null {
  const walk = walkJpeg(bytes);
  const frame = walk?.frame;
  if (
    !walk || !frame || walk.frames !== 1 || walk.scans > MAX_JPEG_SCANS ||
    walk.blockVisits > MAX_JPEG_DECODE_BLOCKS ||
    frame.components.size > MAX_JPEG_COMPONENTS ||
    frame.width * frame.height > MAX_JPEG_DECODE_PIXELS
  ) {
    return null;
  }
  const { width, height, data } = jpeg.decode(bytes, {
    useTArray: true,
    formatAsRGBA: true,
    ...JPEG_LIMITS,
  });
  return { width, height, data };
}

function decodePngRgba(bytes: Uint8Array): RgbaImage | null {
  const png = decodePng(bytes);
  const { width, height } = png;
  let channels = png.channels;
  let data: ArrayLike<number> = png.data;
  let shift = png.depth === 16 ? 8 : 0;
  if (png.palette) {
    data = convertIndexedToRgb(png);
    channels = png.palette[0]?.length ?? 3;
    shift = 0;
  } else if (png.depth < 8) {
    return null; // packed low-depth grey: rare, not worth unpacking for a colour tag
  }
  const out = new Uint8Array(width * height * 4);
  for (let p = 0, i = 0; p < width * height; p++, i += channels) {
    const grey = channels < 3;
    out[p * 4] = data[i] >> shift;
    out[p * 4 + 1] = (grey ? data[i] : data[i + 1]) >> shift;
    out[p * 4 + 2] = (grey ? data[i] : data[i + 2]) >> shift;
    const alpha = channels === 2 ? data[i + 1] : channels === 4 ? data[i + 3] : 255 << shift;
    out[p * 4 + 3] = alpha >> shift;
  }
  return { width, height, data: out };
}

/** One frame of the first MAX_GIF_DECODE_FRAMES (each inside the canvas: checked before). */
function decodeGifFrame(bytes: Uint8Array): RgbaImage {
  const reader = new GifReader(trimGif(bytes));
  const { width, height } = reader;
  const frames = Array.from({ length: reader.numFrames() }, (_, i) => reader.frameInfo(i));
  const data = new Uint8Array(width * height * 4);
  reader.decodeAndBlitFrameRGBA(pickFrame(frames, width, height), data);
  return { width, height, data };
}
