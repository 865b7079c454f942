/**
 * @module workers/metadata — the metadata stage: dimensions from the header (checked against
 * MAX_IMAGE_PIXELS before anything decodes), normalised EXIF/GPS/IPTC/XMP, and the camera's
 * embedded preview stored as the thumbnail.
 */
import { type ImageCompute, inlineCompute } from "../compute.ts";
import { StageError } from "../errors.ts";
import { sha256Hex } from "../net/hash.ts";
import type { StageDefinition } from "../stage_runner.ts";
import type { BlobStore } from "../storage/blob_store.ts";

/** What the metadata stage needs. */
export interface MetadataStageDeps {
  store: BlobStore;
  maxPixels: number;
  /** Where extraction runs. Default inline. */
  compute?: ImageCompute;
}

/** The metadata stage. */
export function metadataStage(deps: MetadataStageDeps): StageDefinition<"metadata"> {
  const compute = deps.compute ?? inlineCompute;
  return {
    stage: "metadata",
    source: "metadata-worker",
    batchSize: 8,
    concurrency: 2,
    timeoutMs: 20_000,
    visibilityTimeoutSeconds: 60,
    async run(job) {
      const path = job.image?.storage_path;
      if (!path) {
        throw new StageError("internal", "Cannot read metadata: the task has no stored image");
      }
      const bytes = await deps.store.get(path);
      const { extracted, thumbnail: thumb } = await compute.extract(bytes, {
        maxPixels: deps.maxPixels,
        signal: job.signal,
      });
      let thumbnail = null;
      if (thumb) {
        const sha256 = await sha256Hex(thumb.bytes);
        thumbnail = {
          sha256,
          contentType: thumb.contentType,
          byteSize: thumb.bytes.byteLength,
          width: thumb.width,
          height: thumb.height,
          storagePath: await deps.store.put(sha256, thumb.bytes, thumb.contentType),
        };
      }
      return { ...extracted, thumbnail };
    },
  };
}
