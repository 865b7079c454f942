/**
 * @module workers/ai — the AI stage: the configured provider captions and tags the image;
 * the task completes in the same transaction.
 */
import type { AiProvider, Analysis, AnalysisInput } from "../ai/types.ts";
import type { ImageCompute } from "../compute.ts";
import { StageError } from "../errors.ts";
import { emptyMetadata } from "../metadata/types.ts";
import type { StageDefinition } from "../stage_runner.ts";
import type { BlobStore } from "../storage/blob_store.ts";

/** What the AI stage needs. */
export interface AiStageDeps {
  store: BlobStore;
  provider: AiProvider;
  /**
   * Where the local provider's analysis runs. Default: the provider itself, inline. Other
   * providers wait on the network, not the CPU, and always run in-process.
   */
  compute?: ImageCompute;
  /** Time budget of one analysis in ms. Default 60000. */
  timeoutMs?: number;
}

/** The AI stage. */
export function aiStage(deps: AiStageDeps): StageDefinition<"ai"> {
  const timeoutMs = deps.timeoutMs ?? 60_000;
  const compute = deps.provider.name === "local" ? deps.compute : undefined;
  const analyze = (input: AnalysisInput): Promise<Analysis> =>
    compute ? compute.analyzeLocal(input) : deps.provider.analyze(input);
  return {
    stage: "ai",
    source: "ai-worker",
    // Local analysis decodes pixels: two per invocation keeps within 2 s of CPU on the edge.
    batchSize: 2,
    concurrency: 2,
    timeoutMs,
    visibilityTimeoutSeconds: Math.ceil(timeoutMs / 1000) + 30,
    async run(job) {
      const image = job.image;
      if (!image) {
        throw new StageError("internal", "Cannot analyse: the task has no stored image");
      }
      const bytes = await deps.store.get(image.storage_path);
      const analysis = await analyze({
        bytes,
        contentType: image.content_type,
        width: image.width,
        height: image.height,
        format: image.format,
        metadata: image.metadata ?? emptyMetadata(),
        signal: job.signal,
      });
      job.log.info("image analysed", {
        provider: analysis.provider,
        tags: analysis.tags.length,
        totalTokens: analysis.usage?.totalTokens ?? 0,
      });
      return { analysis };
    },
  };
}
