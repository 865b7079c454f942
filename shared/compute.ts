/**
 * @module compute — the CPU-heavy calls of the stages (metadata extraction, the local AI
 * provider's analysis) behind one interface. On Supabase each invocation is its own isolate with
 * no threads, so they run inline; the local platform, where the api, the workers and Realtime
 * share one event loop, injects a pool of Web Workers that runs the same functions off it.
 */
import { createLocalProvider } from "./ai/local.ts";
import type { Analysis, AnalysisInput } from "./ai/types.ts";
import { extractImage, type ExtractOptions } from "./metadata/extract.ts";
import { type EmbeddedThumbnail, extractThumbnail } from "./metadata/thumbnail.ts";
import type { ExtractedImage } from "./metadata/types.ts";

/** What the metadata stage computes from one image. */
export interface ExtractResult {
  extracted: ExtractedImage;
  /** The camera's embedded preview; null when there is none worth keeping. */
  thumbnail: EmbeddedThumbnail | null;
}

/** Options of {@linkcode ImageCompute.extract}. */
export interface ExtractCallOptions extends ExtractOptions {
  /** Aborts the call (the stage's time budget). */
  signal?: AbortSignal;
}

/**
 * Where the CPU-heavy work of the stages runs. Implementations throw the same StageErrors the
 * shared functions throw, and may add a retryable `timeout` when the work ran too long.
 */
export interface ImageCompute {
  /** {@linkcode extractImage} then {@linkcode extractThumbnail} on `bytes`. */
  extract(bytes: Uint8Array, opts: ExtractCallOptions): Promise<ExtractResult>;
  /** The local AI provider's analysis of `input`. */
  analyzeLocal(input: AnalysisInput): Promise<Analysis>;
}

/**
 * Extracts dimensions, metadata and the embedded preview of an image: what
 * {@linkcode ImageCompute.extract} does, wherever it runs.
 */
export async function extractWithThumbnail(
  bytes: Uint8Array,
  opts: ExtractOptions,
): Promise<ExtractResult> {
  const extracted = await extractImage(bytes, { maxPixels: opts.maxPixels });
  const thumbnail = await extractThumbnail(bytes, extracted);
  return { extracted, thumbnail };
}

const localProvider = createLocalProvider();

/** The work run on the caller's event loop: what an edge function does. */
export const inlineCompute: ImageCompute = {
  extract: (bytes, opts) => extractWithThumbnail(bytes, opts),
  analyzeLocal: (input) => localProvider.analyze(input),
};
