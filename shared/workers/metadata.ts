/**
 * @module workers/metadata — the metadata stage: dimensions from the header (checked against
 * MAX_IMAGE_PIXELS before anything decodes), normalised EXIF/GPS/IPTC/XMP, and the camera's
 * embedded preview stored as the thumbnail.
 */
import { StageError } from "../errors.ts";
import { extractImage } from "../metadata/extract.ts";
import { extractThumbnail } from "../metadata/thumbnail.ts";
import { sha256Hex } from "../net/hash.ts";
import type { StageDefinition } from "../stage_runner.ts";
import type { BlobStore } from "../storage/blob_store.ts";

/** What the metadata stage needs. */
export interface MetadataStageDeps {
  store: BlobStore;
  maxPixels: number;
}

/** The metadata stage. */
export function metadataStage(deps: MetadataStageDeps): StageDefinition {
  return {
    stage: "metadata",
    source: "metadata-worker",
    batchSize: 8,
    concurrency: 2,
    timeoutMs: 20_000,
    visibilityTimeoutSeconds: 60,
    async run(job) {
      const path = job.image?.storage_path;
      if (typeof path !== "string") {
        throw new StageError("internal", "Cannot read metadata: the task has no stored image");
      }
      const bytes = await deps.store.get(path);
      const extracted = await extractImage(bytes, { maxPixels: deps.maxPixels });
      const thumb = await extractThumbnail(bytes, extracted);
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
