/**
 * @module storage/create_store — the blob store STORAGE_BACKEND names. Apart from the AI
 * providers, so that a function storing blobs does not carry OpenAI's SDK and the decoders.
 */
import type { Config } from "../config.ts";
import type { BlobStore } from "./blob_store.ts";
import { FsBlobStore } from "./fs_store.ts";
import { SupabaseBlobStore } from "./supabase_store.ts";

/** The store STORAGE_BACKEND names; `publicBaseUrl` is where the local platform serves. */
export function createStore(config: Config, opts: { publicBaseUrl: string }): BlobStore {
  if (config.STORAGE_BACKEND === "supabase") {
    return new SupabaseBlobStore({
      supabaseUrl: config.SUPABASE_URL ?? "",
      serviceRoleKey: config.storageKey ?? "",
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
