/**
 * @module functions/download_worker — the `download-worker` function: safe fetch, sniff, store.
 * It decodes nothing, so it imports no metadata reader, decoder or AI provider.
 */
import { edgeDeps } from "../edge.ts";
import { downloadStage } from "../workers/download.ts";
import { createWorkerHandler } from "../workers/handler.ts";
import { type BaseDeps, type Handler, runnerDeps } from "./common.ts";

/** What the download worker needs besides {@linkcode BaseDeps}. */
export interface DownloadWorkerDeps extends BaseDeps {
  /** fetch used for downloads; default the global one. */
  fetch?: typeof fetch;
}

/** The `download-worker` function. */
export function createDownloadWorker(deps: DownloadWorkerDeps): Handler {
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

/** The deployed `download-worker`, from the instance's environment. */
export function edgeDownloadWorker(base: BaseDeps = edgeDeps()): Handler {
  return createDownloadWorker(base);
}
