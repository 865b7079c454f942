/**
 * @module functions — the handler of every edge function, built from its dependencies. The
 * entries under supabase/functions and the local platform both call these, so the code that runs
 * is the same in both places.
 */
import type { AiProvider } from "./ai/types.ts";
import { createApiApp } from "./api/app.ts";
import type { JwtVerifier } from "./auth.ts";
import type { ImageCompute } from "./compute.ts";
import type { Config } from "./config.ts";
import type { Db } from "./db.ts";
import type { Logger } from "./log.ts";
import type { BlobStore } from "./storage/blob_store.ts";
import { aiStage } from "./workers/ai.ts";
import { downloadStage } from "./workers/download.ts";
import { createWorkerHandler } from "./workers/handler.ts";
import { metadataStage } from "./workers/metadata.ts";

/** What the functions need; built from the environment on Supabase, by the platform locally. */
export interface FunctionDeps {
  config: Config;
  db: Db;
  store: BlobStore;
  provider: AiProvider;
  verifier: JwtVerifier;
  log: Logger;
  /** fetch used for downloads; default the global one. */
  fetch?: typeof fetch;
  /** Told when the api queued work (local scheduler wake-up). */
  onQueued?: () => void;
  /** Dispatches "events" when new events may exist (wakes SSE streams). */
  eventsSignal?: EventTarget;
  /** Aborted when the host stops (ends open event streams). */
  shutdownSignal?: AbortSignal;
  /** Where the stages' CPU-heavy work runs. Default inline (an edge function has no threads). */
  compute?: ImageCompute;
}

/** A function's HTTP handler. */
export type Handler = (req: Request) => Promise<Response>;

/** The `api` function. */
export function createApiHandler(deps: FunctionDeps): Handler {
  const app = createApiApp({
    db: deps.db,
    verifier: deps.verifier,
    log: deps.log.child({ fn: "api" }),
    onQueued: deps.onQueued,
    eventsSignal: deps.eventsSignal,
    shutdownSignal: deps.shutdownSignal,
    store: deps.store,
    rateLimit: {
      perMinute: deps.config.RATE_LIMIT_PER_MINUTE,
      burst: deps.config.RATE_LIMIT_BURST,
    },
    allowPrivateNetwork: deps.config.ALLOW_PRIVATE_NETWORK,
  });
  return async (req) => await app.fetch(req);
}

function runnerDeps(deps: FunctionDeps, fn: string) {
  return {
    db: deps.db,
    log: deps.log.child({ fn }),
    maxAttempts: deps.config.MAX_ATTEMPTS,
    verifier: deps.verifier,
  };
}

/** The `download-worker` function. */
export function createDownloadWorker(deps: FunctionDeps): Handler {
  return createWorkerHandler(
    runnerDeps(deps, "download-worker"),
    downloadStage({
      store: deps.store,
      maxBytes: deps.config.MAX_IMAGE_BYTES,
      timeoutMs: deps.config.DOWNLOAD_TIMEOUT_MS,
      allowPrivateNetwork: deps.config.ALLOW_PRIVATE_NETWORK,
      fetch: deps.fetch,
    }),
  );
}

/** The `metadata-worker` function. */
export function createMetadataWorker(deps: FunctionDeps): Handler {
  return createWorkerHandler(
    runnerDeps(deps, "metadata-worker"),
    metadataStage({
      store: deps.store,
      maxPixels: deps.config.MAX_IMAGE_PIXELS,
      compute: deps.compute,
    }),
  );
}

/** The `ai-worker` function. */
export function createAiWorker(deps: FunctionDeps): Handler {
  return createWorkerHandler(
    runnerDeps(deps, "ai-worker"),
    aiStage({
      store: deps.store,
      provider: deps.provider,
      compute: deps.compute,
      timeoutMs: deps.config.OPENAI_TIMEOUT_MS * 2 + 5_000,
    }),
  );
}

/** Every function by name, as mounted under /functions/v1/<name>. */
export function createAllFunctions(deps: FunctionDeps): Record<string, Handler> {
  return {
    "api": createApiHandler(deps),
    "download-worker": createDownloadWorker(deps),
    "metadata-worker": createMetadataWorker(deps),
    "ai-worker": createAiWorker(deps),
  };
}
