/**
 * @module ai/decode — a small RGBA decode for colour measurement, only where it is cheap: a
 * JPEG's EXIF thumbnail, else a small JPEG (jpeg-js), PNG (fast-png) or GIF frame (omggif).
 * Pure JS, bounded by pixel limits to fit an edge function's CPU and memory. Never throws:
 * anything it cannot decode cheaply is `null`.
 */
import exifr from "exifr";
import jpeg from "jpeg-js";
import { convertIndexedToRgb, decode as decodePng } from "fast-png";
import omggif from "omggif";
import { type FrameBox, pickFrame, trimGif } from "./gif_frames.ts";
import { pngInflatesWithinHeader } from "./png_guard.ts";

/** Decoded pixels, 4 bytes (RGBA) each. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Largest JPEG decoded in full (jpeg-js costs ~0.2 s of CPU per megapixel). */
export const MAX_JPEG_DECODE_PIXELS = 2_000_000;
/** Largest PNG or GIF decoded. */
export const MAX_DECODE_PIXELS = 4_000_000;

/** Also bounds a thumbnail, whose size the header does not tell. */
const JPEG_LIMITS = { maxResolutionInMP: MAX_JPEG_DECODE_PIXELS / 1e6, maxMemoryUsageInMB: 64 };

interface GifReaderLike {
  width: number;
  height: number;
  numFrames(): number;
  frameInfo(i: number): FrameBox;
  decodeAndBlitFrameRGBA(i: number, pixels: Uint8Array): void;
}
const { GifReader } = omggif as unknown as { GifReader: new (b: Uint8Array) => GifReaderLike };

/**
 * RGBA pixels for colour measurement, or null when the format has no cheap decoder here, the
 * image has more pixels than the limits (`width`/`height` are the header's), or a PNG's data
 * would inflate past what its header allows (a decompression bomb).
 */
export async function decodeForColors(
  bytes: Uint8Array,
  format: string,
  width: number,
  height: number,
): Promise<RgbaImage | null> {
  try {
    switch (format) {
      case "jpeg":
        return await jpegThumbnail(bytes) ??
          (width * height <= MAX_JPEG_DECODE_PIXELS ? decodeJpeg(bytes) : null);
      case "png":
        return width * height <= MAX_DECODE_PIXELS && await pngInflatesWithinHeader(bytes)
          ? decodePngRgba(bytes)
          : null;
      case "gif":
        return width * height <= MAX_DECODE_PIXELS ? decodeGifFrame(bytes) : null;
      default:
        return null;
    }
  } catch {
    return null; // a decode failure only means no colour tags
  }
}

async function jpegThumbnail(bytes: Uint8Array): Promise<RgbaImage | null> {
  try {
    const thumb = await exifr.thumbnail(bytes);
    return thumb && thumb.length > 0 ? decodeJpeg(new Uint8Array(thumb)) : null;
  } catch {
    return null;
  }
}

function decodeJpeg(bytes: Uint8Array): RgbaImage {
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

function decodeGifFrame(bytes: Uint8Array): RgbaImage {
  const reader = new GifReader(trimGif(bytes));
  const { width, height } = reader;
  const count = Math.min(reader.numFrames(), 64);
  const frames = Array.from({ length: count }, (_, i) => reader.frameInfo(i));
  const data = new Uint8Array(width * height * 4);
  reader.decodeAndBlitFrameRGBA(pickFrame(frames, width, height), data);
  return { width, height, data };
}
