/**
 * @module ai/local — the offline provider: deterministic tags and a caption from what can
 * honestly be measured — the aspect ratio, camera, capture time and location from metadata, and
 * the dominant colours from a small decode — each tag marked with its source. It sees no
 * content: no network, no model weights; cheap enough for an edge function.
 */
import { StageError } from "../errors.ts";
import { readHeader } from "../metadata/dimensions.ts";
import type { ImageMetadata } from "../metadata/types.ts";
import { dominantColors } from "./colors.ts";
import { pixelsForColours } from "./decode.ts";
import { describeCaption, describeTags, type ImageFacts } from "./describe.ts";
import { aspectOf, cameraBrand, cameraLabel, displayedSize, takenParts } from "./facts.ts";
import type { AiProvider, Analysis, AnalysisInput } from "./types.ts";

/** Model name the local provider reports. */
export const LOCAL_MODEL = "darkroom-local-1";

/**
 * The local provider ("local", model "darkroom-local-1"). Never throws on a strange image (what
 * cannot be measured is left out); only an aborted `signal` throws a retryable ai_error.
 *
 * @example
 * const analysis = await createLocalProvider().analyze(input);
 */
export function createLocalProvider(): AiProvider & { readonly model: string } {
  return { name: "local", model: LOCAL_MODEL, analyze };
}

async function analyze(input: AnalysisInput): Promise<Analysis> {
  checkAborted(input.signal);
  const facts = await measure(input);
  checkAborted(input.signal);
  const { tags, tagSources } = describeTags(facts);
  return {
    provider: "local",
    model: LOCAL_MODEL,
    caption: describeCaption(facts),
    tags,
    // No model looks at the content: nothing is flagged (not a judgement that it is safe).
    safety: { adult: false, violence: false, selfHarm: false },
    usage: null,
    tagSources,
    colours: { from: facts.colourFrom, reason: facts.colourReason },
  };
}

async function measure(input: AnalysisInput): Promise<ImageFacts> {
  const { width, height, format } = headerOf(input);
  const meta: Partial<ImageMetadata> = input.metadata ?? {};
  const orientation = typeof meta.orientation === "number" ? meta.orientation : null;
  const make = typeof meta.make === "string" ? meta.make : null;
  const model = typeof meta.model === "string" ? meta.model : null;
  const shown = width && height ? displayedSize(width, height, orientation) : null;
  let colors: ImageFacts["colors"] = [];
  let colourFrom: ImageFacts["colourFrom"] = null;
  let colourReason: string | null = "the image's format and size are unknown";
  if (width && height && format) {
    const pixels = await pixelsForColours(input.bytes, format, width, height);
    if (pixels.image) {
      colors = dominantColors(pixels.image.data);
      colourFrom = pixels.from;
      colourReason = colors.length > 0 ? null : "no opaque pixels";
    } else {
      colourReason = pixels.reason;
    }
  }
  return {
    aspect: shown ? aspectOf(shown.width, shown.height) : null,
    colors,
    colourFrom: colors.length > 0 ? colourFrom : null,
    colourReason,
    brand: cameraBrand(make),
    camera: cameraLabel(make, model)?.slice(0, 60) ?? null,
    taken: takenParts(typeof meta.takenAt === "string" ? meta.takenAt : null),
    geotagged: meta.gps != null && Number.isFinite(meta.gps.lat) && Number.isFinite(meta.gps.lon),
  };
}

/** Dimensions and format from the input, else from the header, else from the content type. */
function headerOf(input: AnalysisInput) {
  let { width, height, format } = input;
  if (!width || !height || !format) {
    try {
      const header = readHeader(input.bytes, Number.MAX_SAFE_INTEGER);
      width ||= header.width;
      height ||= header.height;
      format ||= header.format;
    } catch {
      // no readable header: shape, size and colours stay unknown
    }
  }
  format ||= input.contentType?.match(/^image\/([a-z0-9.+-]+)/i)?.[1].toLowerCase() ?? null;
  return { width: width || null, height: height || null, format: format || null };
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new StageError("ai_error", "Cannot analyze image: aborted", true, {
      cause: signal.reason,
    });
  }
}
