/**
 * @module workers/download — the download stage: fetch the URL under the address policy with a
 * byte cap and a deadline, sniff the real type, hash it, store the blob content-addressed.
 */
import { StageError } from "../errors.ts";
import { sha256Hex } from "../net/hash.ts";
import { safeFetchImage } from "../net/safe_fetch.ts";
import { sniffImageType } from "../net/sniff.ts";
import type { StageDefinition } from "../stage_runner.ts";
import type { BlobStore } from "../storage/blob_store.ts";

/** What the download stage needs. */
export interface DownloadStageDeps {
  store: BlobStore;
  maxBytes: number;
  timeoutMs: number;
  allowPrivateNetwork: boolean;
  fetch?: typeof fetch;
}

/** The download stage. */
export function downloadStage(deps: DownloadStageDeps): StageDefinition<"download"> {
  return {
    stage: "download",
    source: "download-worker",
    // 4 × MAX_IMAGE_BYTES (20 MiB) in memory at once stays well inside an edge function's 256 MB.
    batchSize: 4,
    concurrency: 4,
    timeoutMs: deps.timeoutMs + 10_000,
    visibilityTimeoutSeconds: Math.ceil(deps.timeoutMs / 1000) + 45,
    async run(job) {
      const url = job.task.image_url;
      const res = await safeFetchImage(url, {
        maxBytes: deps.maxBytes,
        timeoutMs: deps.timeoutMs,
        allowPrivateNetwork: deps.allowPrivateNetwork,
        fetch: deps.fetch,
        signal: job.signal,
      });
      const type = await sniffImageType(res.bytes);
      if (!type) {
        throw new StageError(
          "not_an_image",
          `Cannot use download: the bytes are not a supported image (declared ${
            res.contentType ?? "no type"
          })`,
        );
      }
      const sha256 = await sha256Hex(res.bytes);
      const storagePath = await deps.store.put(sha256, res.bytes, type.mime);
      job.log.info("image downloaded", {
        byteSize: res.bytes.byteLength,
        contentType: type.mime,
        redirects: res.redirects,
      });
      return { sha256, contentType: type.mime, byteSize: res.bytes.byteLength, storagePath };
    },
  };
}
