/**
 * @module image_bounds — every bound on the work a decoder or metadata parser may do for one
 * file, with its number and why, in one place. The metadata stage rejects a file that crosses
 * one of the structural bounds (shared/metadata/bounds.ts); the colour decode returns null past
 * a decode bound (shared/ai/decode.ts). Bounds are checked before a library sees the bytes.
 */

// ---- pixels

/** Largest JPEG decoded in full for colours (jpeg-js costs ~0.2 s of CPU per megapixel). */
export const MAX_JPEG_DECODE_PIXELS = 2_000_000;
/** Largest PNG or GIF frame decoded for colours (4 bytes a pixel: 16 MB of RGBA). */
export const MAX_DECODE_PIXELS = 4_000_000;
/** jpeg-js's own allocation cap, in MB: also bounds an EXIF thumbnail, whose size no header tells. */
export const MAX_JPEG_DECODE_MEMORY_MB = 64;
/**
 * Pixels of all frames of an animation together (GIF, APNG, animated WebP): what a decoder that
 * renders every frame writes; ten times the default still-image cap (MAX_IMAGE_PIXELS).
 */
export const MAX_TOTAL_FRAME_PIXELS = 1_000_000_000;

// ---- animations

/** Frames of an animation examined; more is no photo and only costs a walk per frame. */
export const MAX_ANIMATION_FRAMES = 10_000;
/** GIF blocks (frames and extensions) walked; two per frame is usual. */
export const MAX_GIF_BLOCKS = 100_000;
/** GIF frames handed to omggif for the colour sample: it parses every frame it is given. */
export const MAX_GIF_DECODE_FRAMES = 64;
// A GIF frame must lie inside its canvas (GIF89a 20.c); a decoder allocates the frame's box,
// so a 1x1 canvas with a 65535x65535 frame would cost 4.3 GB. No number: it is a rule.

// ---- PNG

/** PNG chunks walked (exifr keeps an object per chunk); 8 KB IDATs of a 20 MB file are 2.5k. */
export const MAX_PNG_CHUNKS = 100_000;
/** Inflated bytes of one compressed ancillary chunk (iCCP, zTXt, iTXt): ICC profiles are < 1 MB. */
export const MAX_PNG_ANCILLARY_BYTES = 4 * 1024 * 1024;
/** Inflated bytes of all compressed ancillary chunks of a PNG together. */
export const MAX_PNG_ANCILLARY_TOTAL_BYTES = 16 * 1024 * 1024;
// IDAT inflates to at most what IHDR's size allows (expectedPngBytes in shared/ai/png_guard.ts),
// checked before fast-png inflates it in one go.

// ---- JPEG

/** Marker segments of a JPEG (APPn, DQT, DHT, SOS, ...); ICC in 255 APP2s is a big legit case. */
export const MAX_JPEG_SEGMENTS = 4096;
/**
 * Scans of a JPEG: progressive encoders write ~10 (libjpeg) to a few dozen; libjpeg-turbo's
 * fuzzers refuse over 500. Each scan visits every block of its components.
 */
export const MAX_JPEG_SCANS = 500;
/**
 * Blocks visited over all scans when decoding for colours (scans x blocks): ~20 full-image scans
 * of a 2 MP 4:4:4 image, about 100 ms of jpeg-js at worst.
 */
export const MAX_JPEG_DECODE_BLOCKS = 4_000_000;
/** Components of a JPEG jpeg-js decodes (it renders 1, 3 or 4). */
export const MAX_JPEG_COMPONENTS = 4;

// ---- TIFF / EXIF

/** IFDs walked in a TIFF block: IFD0, IFD1 and the EXIF, GPS and Interop IFDs exifr reads. */
export const MAX_TIFF_IFDS = 8;
/** Entries of one IFD (within the block): cameras write ~10-100; the format allows 65535. */
export const MAX_IFD_ENTRIES = 4096;
/**
 * Bytes of array and text values exifr copies element by element, over all entries: entries may
 * all point at one big array, so this bounds entries x array size, not the file size.
 */
export const MAX_TIFF_VALUE_BYTES = 16 * 1024 * 1024;

// ---- HEIF / AVIF

/** ISO-BMFF boxes walked (top level, meta, iprp, ipco, iinf): real files have a few dozen. */
export const MAX_HEIF_BOXES = 4096;
/** Size of the meta box, which exifr and image-size walk: real ones are a few KB. */
export const MAX_HEIF_META_BYTES = 16 * 1024 * 1024;
// A box of size 0 ("to the end of the file") or under 8 bytes before the meta box is corrupt:
// exifr steps from box to box by their sizes and would never move on.

// ---- WebP

/** RIFF chunks of a WebP (an animation has one ANMF chunk per frame). */
export const MAX_WEBP_CHUNKS = 100_000;
// An ANMF frame must lie inside the VP8X canvas (WebP container spec). No number: it is a rule.

// ---- metadata text

/** XMP packets past this size are not parsed (exifr parses XMP with regular expressions). */
export const MAX_XMP_BYTES = 512 * 1024;
/** Largest side of an embedded preview worth keeping, in pixels. */
export const MAX_THUMBNAIL_SIDE = 640;
/** Largest embedded preview worth keeping, in bytes. */
export const MAX_THUMBNAIL_BYTES = 256 * 1024;
