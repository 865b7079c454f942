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

/** A provider's answer, stored as images.analysis and published in image.analyzed. */
export interface Analysis {
  provider: string;
  model: string;
  caption: string;
  /** 3 to 10 lowercase tags, no duplicates. */
  tags: string[];
  safety: SafetyFlags;
  usage: TokenUsage | null;
}

/**
 * Captions and tags an image. Throws `StageError("ai_error", ..., retryable)` when it cannot:
 * retryable for 429/5xx/timeouts, not for malformed model output after its own retries.
 */
export interface AiProvider {
  readonly name: string;
  analyze(input: AnalysisInput): Promise<Analysis>;
}
