/**
 * @module functions/ai_worker — the `ai-worker` function: the one that builds an AI provider,
 * so the only one that carries OpenAI's SDK.
 */
import { admissionSettings } from "../ai/admission.ts";
import type { AiProvider } from "../ai/types.ts";
import type { ImageCompute } from "../compute.ts";
import { edgeDeps } from "../edge.ts";
import { createProvider } from "../providers.ts";
import { aiStage } from "../workers/ai.ts";
import { createWorkerHandler } from "../workers/handler.ts";
import { type BaseDeps, type Handler, runnerDeps } from "./common.ts";

/** What the AI worker needs besides {@linkcode BaseDeps}. */
export interface AiWorkerDeps extends BaseDeps {
  provider: AiProvider;
  /** Where the local provider's analysis runs. Default inline (an edge function has no threads). */
  compute?: ImageCompute;
}

/** The `ai-worker` function. */
export function createAiWorker(deps: AiWorkerDeps): Handler {
  return createWorkerHandler(
    runnerDeps(deps, "ai-worker"),
    aiStage({
      store: deps.store,
      provider: deps.provider,
      compute: deps.compute,
      timeoutMs: deps.config.OPENAI_TIMEOUT_MS * 2 + 5_000,
      admission: {
        db: deps.db,
        settings: admissionSettings(deps.config, 0),
        noReuse: deps.config.AI_REUSE === "off",
      },
    }),
  );
}

/** The deployed `ai-worker`, from the instance's environment; the provider AI_PROVIDER names. */
export function edgeAiWorker(base: BaseDeps = edgeDeps()): Handler {
  return createAiWorker({ ...base, provider: createProvider(base.config) });
}
