/**
 * @module providers — picks the AI provider and the blob store the configuration names.
 */
import { createLocalProvider } from "./ai/local.ts";
import { createOpenAiProvider } from "./ai/openai.ts";
import type { AiProvider } from "./ai/types.ts";
import type { Config } from "./config.ts";
import type { BlobStore } from "./storage/blob_store.ts";
import { FsBlobStore } from "./storage/fs_store.ts";
import { SupabaseBlobStore } from "./storage/supabase_store.ts";

/** The provider AI_PROVIDER names. */
export function createProvider(config: Config): AiProvider {
  if (config.AI_PROVIDER === "openai") {
    return createOpenAiProvider({
      apiKey: config.OPENAI_API_KEY ?? "",
      baseURL: config.OPENAI_BASE_URL,
      model: config.OPENAI_MODEL,
      timeoutMs: config.OPENAI_TIMEOUT_MS,
    });
  }
  return createLocalProvider();
}

/** The store STORAGE_BACKEND names; `publicBaseUrl` is where the local platform serves. */
export function createStore(config: Config, opts: { publicBaseUrl: string }): BlobStore {
  if (config.STORAGE_BACKEND === "supabase") {
    return new SupabaseBlobStore({
      supabaseUrl: config.SUPABASE_URL ?? "",
      serviceRoleKey: config.SUPABASE_SERVICE_ROLE_KEY ?? "",
      bucket: config.STORAGE_BUCKET,
    });
  }
  return new FsBlobStore({
    root: `${config.DATA_DIR}/storage`,
    publicBaseUrl: opts.publicBaseUrl,
    signingSecret: config.JWT_SECRET,
    bucket: config.STORAGE_BUCKET,
  });
}
