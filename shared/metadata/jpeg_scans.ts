/**
 * @module metadata/jpeg_scans — one linear walk over all of a JPEG's markers, through the
 * entropy-coded data too: segments, scans (SOS) and the blocks a decoder visits over all scans.
 * A progressive scan can be 12 bytes yet make a decoder visit every block of the image, so the
 * cost of a JPEG is scans x blocks, not its size. Counts stop at the caps, so the walk is cheap
 * whatever the file declares.
 */
import { MAX_JPEG_SCANS, MAX_JPEG_SEGMENTS } from "../image_bounds.ts";

/** The frame header (SOFn) as a decoder sizes its blocks from it. */
export interface JpegFrame {
  width: number;
  height: number;
  /** Sampling factors by component id. */
  components: Map<number, { h: number; v: number }>;
}

/** What the walk found. */
export interface JpegWalk {
  /** Marker segments with a length (APPn, DQT, DHT, SOFn, SOS, ...), up to MAX_JPEG_SEGMENTS + 1. */
  segments: number;
  /** SOS markers, up to MAX_JPEG_SCANS + 1. */
  scans: number;
  /** The first frame header; null before one is seen. */
  frame: JpegFrame | null;
  /** Frame headers seen (jpeg-js decodes only single-frame files). */
  frames: number;
  /** Blocks a decoder visits over the scans walked (jpeg-js's loop bounds). */
  blockVisits: number;
  /** TIFF blocks of the "Exif" APP1 segments, "Exif\0\0" removed. */
  exif: Uint8Array[];
}

/** Walks a JPEG's markers; null when `bytes` do not start with SOI. Stops at EOI or garbage. */
export function walkJpeg(bytes: Uint8Array): JpegWalk | null {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  const walk: JpegWalk = {
    segments: 0,
    scans: 0,
    frame: null,
    frames: 0,
    blockVisits: 0,
    exif: [],
  };
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (walk.segments > MAX_JPEG_SEGMENTS || walk.scans > MAX_JPEG_SCANS) break;
    if (bytes[at] !== 0xff) break; // garbage: decoders stop here too
    const marker = bytes[at + 1];
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0xd9) break; // EOI
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      at += 2;
      continue;
    }
    const length = (bytes[at + 2] << 8) | bytes[at + 3];
    if (length < 2) break;
    const body = bytes.subarray(at + 4, Math.min(bytes.length, at + 2 + length));
    walk.segments++;
    if (isFrameMarker(marker)) {
      walk.frames++;
      walk.frame ??= readFrame(body);
    } else if (marker === 0xe1 && body.length > 6 && ascii(body, 0, 6) === "Exif\0\0") {
      walk.exif.push(body.subarray(6));
    }
    at += 2 + length;
    if (marker === 0xda) {
      walk.scans++;
      walk.blockVisits += scanBlocks(walk.frame, body);
      at = skipEntropyData(bytes, at);
    }
  }
  return walk;
}

/** SOF0-SOF15 but DHT (C4), JPG (C8) and DAC (CC). */
function isFrameMarker(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

function readFrame(body: Uint8Array): JpegFrame | null {
  if (body.length < 6) return null;
  const components = new Map<number, { h: number; v: number }>();
  for (let i = 0, at = 6; i < body[5] && at + 3 <= body.length; i++, at += 3) {
    components.set(body[at], { h: body[at + 1] >> 4, v: body[at + 1] & 15 });
  }
  return { height: (body[1] << 8) | body[2], width: (body[3] << 8) | body[4], components };
}

/**
 * Blocks jpeg-js visits in one scan: a one-component scan walks that component's blocks, an
 * interleaved one every MCU with h x v blocks of each component.
 */
function scanBlocks(frame: JpegFrame | null, sos: Uint8Array): number {
  if (!frame || sos.length < 1) return 0;
  const sampling = [...frame.components.values()];
  const maxH = Math.max(1, ...sampling.map((c) => c.h));
  const maxV = Math.max(1, ...sampling.map((c) => c.v));
  const inScan = [];
  for (let i = 0; i < sos[0] && 1 + 2 * i < sos.length; i++) {
    const c = frame.components.get(sos[1 + 2 * i]);
    if (c) inScan.push(c);
  }
  if (inScan.length === 1) {
    const { h, v } = inScan[0];
    const perLine = Math.ceil(Math.ceil((frame.width * h) / maxH) / 8);
    const perColumn = Math.ceil(Math.ceil((frame.height * v) / maxV) / 8);
    return perLine * perColumn;
  }
  const mcus = Math.ceil(frame.width / 8 / maxH) * Math.ceil(frame.height / 8 / maxV);
  return mcus * inScan.reduce((n, c) => n + c.h * c.v, 0);
}

/** Offset of the next marker after entropy-coded data (0xFF not followed by 0 or RSTn). */
function skipEntropyData(bytes: Uint8Array, at: number): number {
  for (; at + 1 < bytes.length; at++) {
    if (bytes[at] !== 0xff) continue;
    const next = bytes[at + 1];
    if (next !== 0 && next !== 0xff && (next < 0xd0 || next > 0xd7)) return at;
  }
  return bytes.length;
}

function ascii(bytes: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...bytes.subarray(from, to));
}
