/**
 * @module workers/ai — the AI stage: the configured provider captions and tags the image;
 * the task completes in the same transaction. A metered provider is asked only when Postgres
 * admits the call (shared/ai/admission.ts): a completed analysis of the same image is reused,
 * a task whose image is being analysed by another waits for that analysis, and a call that
 * would break the budget or the provider's limits waits, none of it spending a try.
 */
import type { AiProvider, Analysis, AnalysisInput } from "../ai/types.ts";
import { ProviderRateLimited } from "../ai/types.ts";
import { type AdmissionSettings, admitAnalysis, drainProviderBuckets } from "../ai/admission.ts";
import { PROMPT_VERSION } from "../ai/prompt.ts";
import type { ImageCompute } from "../compute.ts";
import type { Queryable } from "../db.ts";
import { StageError } from "../errors.ts";
import { emptyMetadata } from "../metadata/types.ts";
import { type StageDefinition, StageWait } from "../stage_runner.ts";
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
  /**
   * Reuse, limits and budgets for a metered provider: the database that decides, and the
   * settings (admissionSettings(config)). Without it every task calls the provider.
   */
  admission?: {
    db: Queryable;
    settings: Omit<AdmissionSettings, "claimSeconds">;
    /** Reuse nothing (AI_REUSE=off); limits and budgets still hold. Default false. */
    noReuse?: boolean;
  };
}

/** A wait this short is slept in place (the message stays held) rather than released. */
const INLINE_WAIT_SECONDS = 1.5;
/** At most this long slept in place per message, in seconds. */
const INLINE_WAIT_TOTAL_SECONDS = 6;

/** The AI stage. */
export function aiStage(deps: AiStageDeps): StageDefinition<"ai"> {
  const timeoutMs = deps.timeoutMs ?? 60_000;
  const compute = deps.provider.name === "local" ? deps.compute : undefined;
  const analyze = (input: AnalysisInput): Promise<Analysis> =>
    compute ? compute.analyzeLocal(input) : deps.provider.analyze(input);
  const vtSeconds = Math.ceil(timeoutMs / 1000) + 30;
  const admission = deps.provider.metered ? deps.admission : undefined;
  return {
    stage: "ai",
    source: "ai-worker",
    // Local analysis decodes pixels: two per invocation keeps within 2 s of CPU on the edge.
    batchSize: 2,
    concurrency: 2,
    timeoutMs,
    visibilityTimeoutSeconds: vtSeconds,
    async run(job) {
      const image = job.image;
      if (!image) {
        throw new StageError("internal", "Cannot analyse: the task has no stored image");
      }
      const model = deps.provider.model ?? deps.provider.name;
      let estimatedTokens: number | undefined;
      if (admission) {
        const key = {
          sha256: image.sha256,
          provider: deps.provider.name,
          model,
          promptVersion: PROMPT_VERSION,
        };
        const force = admission.noReuse === true || job.task.options?.reanalyze === true;
        const settings = { ...admission.settings, claimSeconds: vtSeconds };
        let slept = 0;
        while (true) {
          const decision = await admitAnalysis(admission.db, job.taskId, key, force, settings);
          if (decision.action === "reuse") {
            job.log.info("analysis reused", { analysisId: decision.analysisId });
            return { analysis: decision.analysis, reusedFrom: decision.analysisId };
          }
          if (decision.action === "call") {
            estimatedTokens = decision.estimatedTokens;
            break;
          }
          // A short wait for the rate limit's next slot is cheaper slept here than released.
          if (
            decision.reason === "rate_limit" && decision.delaySeconds <= INLINE_WAIT_SECONDS &&
            slept + decision.delaySeconds <= INLINE_WAIT_TOTAL_SECONDS && !job.signal.aborted
          ) {
            slept += decision.delaySeconds;
            await sleep(decision.delaySeconds * 1000, job.signal);
            continue;
          }
          throw new StageWait(decision.delaySeconds, decision.reason, decision.detail);
        }
      }
      const bytes = await deps.store.get(image.storage_path);
      let analysis: Analysis;
      try {
        analysis = await analyze({
          bytes,
          contentType: image.content_type,
          width: image.width,
          height: image.height,
          format: image.format,
          metadata: image.metadata ?? emptyMetadata(),
          signal: job.signal,
        });
      } catch (err) {
        if (admission && err instanceof ProviderRateLimited) {
          // Every invocation shares the bucket: none calls again before Retry-After.
          await drainProviderBuckets(
            admission.db,
            deps.provider.name,
            model,
            err.retryAfterSeconds,
          );
          job.log.warn("provider rate limit; bucket drained", {
            retryAfterSeconds: err.retryAfterSeconds,
          });
          throw new StageWait(err.retryAfterSeconds, "rate_limit", { status: 429 });
        }
        throw err;
      }
      job.log.info("image analysed", {
        provider: analysis.provider,
        tags: analysis.tags.length,
        totalTokens: analysis.usage?.totalTokens ?? 0,
      });
      return admission
        ? { analysis, promptVersion: PROMPT_VERSION, estimatedTokens }
        : { analysis };
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
