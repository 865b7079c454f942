/**
 * @module metadata/exif_read — runs exifr over an image (and over the EXIF/XMP chunks of a WebP,
 * which exifr does not find itself). Never throws: what cannot be read becomes an issue, which
 * flags the metadata as partial.
 */
import exifr from "exifr";
import { MAX_XMP_BYTES } from "../image_bounds.ts";
import { imageBoundsProblem } from "./bounds.ts";
import type { RawMetadata } from "./exif_normalize.ts";
import { cleanString } from "./exif_json.ts";
import { readExifFallback } from "./exif_fallback.ts";
import { isTiffBlock, jpegApp1Kinds, jpegExifBlock, jpegExifIssues } from "./jpeg_segments.ts";
import { webpMetadataChunks } from "./webp_exif.ts";

/** Formats exifr 7.1.3 reads itself (it throws "Unknown file format" on GIF). */
const EXIFR_FORMATS = new Set(["jpeg", "tiff", "png", "heic", "heif", "avif"]);

/**
 * Raw values, not JS Dates in the machine's zone (`reviveValues: false`), numeric codes
 * (`translateValues: false`); blocks kept apart (`mergeOutput: false`) so XMP's exif:* and
 * tiff:* namespaces cannot overwrite the EXIF IFDs. XMP comes back as text and is parsed on
 * its own, by namespace.
 */
const BLOCK_OPTIONS = {
  tiff: true,
  exif: true,
  gps: true,
  interop: true,
  ifd1: false,
  iptc: true,
  ihdr: true,
  jfif: false,
  icc: false,
  xmp: { parse: false },
  makerNote: false,
  userComment: false,
  translateKeys: true,
  translateValues: false,
  reviveValues: false,
  sanitize: true,
  mergeOutput: false,
};
const XMP_OPTIONS = { translateValues: false, reviveValues: false, mergeOutput: false };

/** Options of {@linkcode readRawMetadata}. */
export interface ReadRawOptions {
  /** The caller already ran checkImageBounds on these bytes (default false: check here). */
  boundsChecked?: boolean;
}

/**
 * Reads EXIF, GPS, IPTC and XMP of an image of `format` with exifr. A file crossing a decoder
 * bound (shared/metadata/bounds.ts) is not handed to exifr: its metadata is an issue instead.
 */
export async function readRawMetadata(
  bytes: Uint8Array,
  format: string,
  opts: ReadRawOptions = {},
): Promise<RawMetadata> {
  if (format !== "webp" && !EXIFR_FORMATS.has(format)) return {};
  if (!opts.boundsChecked) {
    // exifr has no limits of its own; the header's size does not matter to it, the structure does.
    const problem = await imageBoundsProblem(bytes, format, Infinity, Infinity);
    if (problem) return { issues: [problem.message] };
  }
  if (format === "webp") return await readWebp(bytes);
  const app1 = format === "jpeg" ? jpegApp1Kinds(bytes) : [];
  const issues = jpegExifIssues(app1);
  const { blocks, xmpText } = await parseBlocks(bytes, issues);
  if (!blocks.ifd0) {
    // exifr drops a whole IFD over one bad entry, and IFD0 holds the way to the others: read
    // what it refused with the second reader, block by block, keeping what exifr did read.
    const tiff = format === "jpeg" ? jpegExifBlock(bytes) : format === "tiff" ? bytes : null;
    const fallback = tiff ? readExifFallback(tiff) : {};
    const recovered = (["ifd0", "exif", "gps"] as const).filter((b) => !blocks[b] && fallback[b]);
    for (const b of recovered) blocks[b] = fallback[b];
    if (recovered.length > 0) {
      issues.push(`EXIF ${recovered.join(", ")} read by the fallback reader (exifr refused them)`);
    }
  }
  if (app1.includes("exif") && !blocks.ifd0 && !blocks.exif) {
    issues.push("EXIF block could not be read");
  }
  const xmp = xmpText === undefined ? undefined : await parseXmp(xmpText, issues);
  return { blocks, xmp, issues };
}

async function readWebp(bytes: Uint8Array): Promise<RawMetadata> {
  const chunks = webpMetadataChunks(bytes);
  const issues: string[] = [];
  let blocks: Record<string, unknown> = {};
  if (chunks.exif && isTiffBlock(chunks.exif)) {
    blocks = (await parseBlocks(chunks.exif, issues)).blocks;
  } else if (chunks.exif) {
    issues.push("WebP EXIF chunk has no valid TIFF header");
  }
  const xmp = chunks.xmp ? await parseXmp(chunks.xmp, issues) : undefined;
  return { blocks, xmp, issues };
}

async function parseBlocks(input: Uint8Array, issues: string[]) {
  let output: Record<string, unknown> | undefined;
  try {
    output = await exifr.parse(input, BLOCK_OPTIONS);
  } catch (error) {
    const message = errorMessage(error);
    // "Unknown file format": nothing exifr can read here, which is not a broken block.
    if (message !== "Unknown file format") issues.push(`Cannot read metadata: ${message}`);
  }
  const { xmp, errors, ...blocks } = output ?? {};
  if (Array.isArray(errors)) {
    for (const e of errors.slice(0, 5)) issues.push(`Cannot read metadata: ${errorMessage(e)}`);
  }
  const xmpText = typeof xmp === "string" || xmp instanceof Uint8Array ? xmp : undefined;
  return { blocks, xmpText };
}

async function parseXmp(
  packet: string | Uint8Array,
  issues: string[],
): Promise<Record<string, unknown> | undefined> {
  const bytes = typeof packet === "string" ? new TextEncoder().encode(packet) : packet;
  if (bytes.length > MAX_XMP_BYTES) {
    issues.push(`XMP packet of ${bytes.length} bytes not read`);
    return undefined;
  }
  try {
    const parsed = await exifr.sidecar(bytes, XMP_OPTIONS, "xmp");
    return parsed && typeof parsed === "object" ? parsed as Record<string, unknown> : undefined;
  } catch (error) {
    issues.push(`Cannot read XMP: ${errorMessage(error)}`);
    return undefined;
  }
}

function errorMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return cleanString(text).slice(0, 200);
}
