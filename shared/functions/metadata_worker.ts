/**
 * @module functions/metadata_worker — the `metadata-worker` function: dimensions, EXIF and the
 * embedded preview. It imports no AI provider.
 */
import type { ImageCompute } from "../compute.ts";
import { edgeDeps } from "../edge.ts";
import { createWorkerHandler } from "../workers/handler.ts";
import { metadataStage } from "../workers/metadata.ts";
import { type BaseDeps, type Handler, runnerDeps } from "./common.ts";

/** What the metadata worker needs besides {@linkcode BaseDeps}. */
export interface MetadataWorkerDeps extends BaseDeps {
  /** Where the extraction runs. Default inline (an edge function has no threads). */
  compute?: ImageCompute;
}

/** The `metadata-worker` function. */
export function createMetadataWorker(deps: MetadataWorkerDeps): Handler {
  return createWorkerHandler(
    runnerDeps(deps, "metadata-worker"),
    metadataStage({
      store: deps.store,
      maxPixels: deps.config.MAX_IMAGE_PIXELS,
      compute: deps.compute,
    }),
  );
}

/** The deployed `metadata-worker`, from the instance's environment. */
export function edgeMetadataWorker(base: BaseDeps = edgeDeps()): Handler {
  return createMetadataWorker(base);
}
