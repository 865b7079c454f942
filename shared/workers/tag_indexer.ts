/**
 * @module workers/tag_indexer — the `tag_indexer` subscriber: on image.analyzed, the image's tags
 * replace what the index held for it (darkroom.replace_image_tags).
 */
import type { Queryable } from "../db.ts";
import { StageError } from "../errors.ts";
import type { SubscriberDefinition } from "../subscriber_runner.ts";

/** The tag indexer over `db`. */
export function tagIndexerSubscriber(db: Queryable): SubscriberDefinition {
  return {
    subscriber: "tag_indexer",
    source: "tag-indexer-worker",
    batchSize: 32,
    async handle(job) {
      const imageId = job.event.payload.imageId;
      if (typeof imageId !== "string") {
        throw new StageError("internal", "image.analyzed without an imageId", false);
      }
      const [{ n }] = await db.query<{ n: number }>(
        "select darkroom.replace_image_tags(p_image_id => $1::uuid) as n",
        [imageId],
      );
      job.log.debug("image tags indexed", { imageId, tags: n });
    },
  };
}
