/**
 * @module ai/types — the one interface every AI provider implements.
 */
import type { ImageMetadata } from "../metadata/types.ts";

/** What a provider is given: the stored bytes and what earlier stages measured. */
export interface AnalysisInput {
  bytes: Uint8Array;
  contentType: string;
  width: number | null;
  height: number | null;
  format: string | null;
  metadata: ImageMetadata;
  /** Aborts the call (the stage's time budget). */
  signal?: AbortSignal;
}

/** Safety flags; `true` means the model flagged the image for that category. */
export interface SafetyFlags {
  adult: boolean;
  violence: boolean;
  selfHarm: boolean;
}

/** Tokens a remote model spent on one analysis. */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/** What produced a tag: the file's metadata, the measured colours, or a model that saw the image. */
export type TagSource = "metadata" | "colour" | "model";

/** How the local provider read an image's colours, or why it could not. */
export interface ColourReading {
  /** The pixels measured: the image itself, the camera's embedded EXIF preview, or none. */
  from: "image" | "embedded-thumbnail" | null;
  /** Why no colours were measured (null when they were). */
  reason: string | null;
}

/** A provider's answer, stored as images.analysis and published in image.analyzed. */
export interface Analysis {
  provider: string;
  model: string;
  caption: string;
  /** 3 to 10 lowercase tags, no duplicates. */
  tags: string[];
  safety: SafetyFlags;
  usage: TokenUsage | null;
  /**
   * Per tag, what produced it. Absent in analyses stored before sources were recorded; the AI
   * stage stores and publishes the analysis as a whole, so this travels with it.
   */
  tagSources?: Record<string, TagSource>;
  /** The local provider's colour measurement: where the colours came from, or why none. */
  colours?: ColourReading;
}

/**
 * Captions and tags an image. Throws `StageError("ai_error", ..., retryable)` when it cannot:
 * retryable for 429/5xx/timeouts, not for malformed model output after its own retries.
 */
export interface AiProvider {
  readonly name: string;
  /** The model it calls; with `metered`, the key of its limits, budgets and reuse. */
  readonly model?: string;
  /**
   * Whether each call costs money and meets the provider's rate limits: then the AI stage reuses
   * analyses, keeps to the limits and budgets (shared/ai/admission.ts). Default false.
   */
  readonly metered?: boolean;
  analyze(input: AnalysisInput): Promise<Analysis>;
}

/**
 * The provider answered 429 (a rate limit that passes with time, not an exhausted quota) and
 * the caller asked to handle it: the AI stage drains the shared bucket for `retryAfterSeconds`
 * and gives the message back without spending a try.
 */
export class ProviderRateLimited extends Error {
  override readonly name = "ProviderRateLimited";
  /** The provider's Retry-After, in seconds (at least 1). */
  readonly retryAfterSeconds: number;

  constructor(message: string, retryAfterSeconds: number | undefined) {
    super(message);
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterSeconds ?? 1));
  }
}
