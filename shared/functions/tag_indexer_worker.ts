/**
 * @module functions/tag_indexer_worker — the `tag-indexer-worker` function: keeps the tag index
 * from image.analyzed events. SQL only: no Hono, no decoder, no AI provider.
 */
import { edgeDeps } from "../edge.ts";
import { createSubscriberHandler } from "../workers/handler.ts";
import { tagIndexerSubscriber } from "../workers/tag_indexer.ts";
import { type BaseDeps, type Handler, runnerDeps } from "./common.ts";

/** The `tag-indexer-worker` function. */
export function createTagIndexerWorker(deps: BaseDeps): Handler {
  return createSubscriberHandler(
    runnerDeps(deps, "tag-indexer-worker"),
    tagIndexerSubscriber(deps.db),
  );
}

/** The deployed `tag-indexer-worker`, from the instance's environment. */
export function edgeTagIndexerWorker(base: BaseDeps = edgeDeps()): Handler {
  return createTagIndexerWorker(base);
}
