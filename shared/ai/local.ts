/**
 * @module ai/local — the offline provider: deterministic tags and a caption from what can
 * honestly be measured (shape, size, dominant colours, camera, capture time, location). No
 * network, no model weights; cheap enough for an edge function.
 */
import { StageError } from "../errors.ts";
import { readHeader } from "../metadata/dimensions.ts";
import type { ImageMetadata } from "../metadata/types.ts";
import { dominantColors } from "./colors.ts";
import { decodeForColors } from "./decode.ts";
import { describeCaption, describeTags, type ImageFacts } from "./describe.ts";
import {
  cameraBrand,
  cameraLabel,
  displayedSize,
  shapeOf,
  sizeClass,
  takenParts,
} from "./facts.ts";
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
  return {
    provider: "local",
    model: LOCAL_MODEL,
    caption: describeCaption(facts),
    tags: describeTags(facts),
    safety: { adult: false, violence: false, selfHarm: false },
    usage: null,
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
  if (width && height && format) {
    const pixels = await decodeForColors(input.bytes, format, width, height);
    if (pixels) colors = dominantColors(pixels.data);
  }
  return {
    format,
    shape: shown ? shapeOf(shown.width, shown.height) : null,
    size: shown ? sizeClass(shown.width, shown.height) : null,
    colors,
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
