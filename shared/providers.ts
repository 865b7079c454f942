/**
 * @module providers — picks the AI provider the configuration names (and re-exports the blob
 * store's factory for the local platform, which runs every function).
 */
import { createLocalProvider } from "./ai/local.ts";
import { createOpenAiProvider } from "./ai/openai.ts";
import type { AiProvider } from "./ai/types.ts";
import type { Config } from "./config.ts";

export { createStore } from "./storage/create_store.ts";

/** The provider AI_PROVIDER names. */
export function createProvider(config: Config): AiProvider {
  if (config.AI_PROVIDER === "openai") {
    return createOpenAiProvider({
      apiKey: config.OPENAI_API_KEY ?? "",
      baseURL: config.OPENAI_BASE_URL,
      model: config.OPENAI_MODEL,
      timeoutMs: config.OPENAI_TIMEOUT_MS,
      // The AI stage keeps to the shared limits and drains them on a 429 (shared/ai/admission.ts).
      rateLimits: "caller",
    });
  }
  return createLocalProvider();
}
