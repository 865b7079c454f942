/**
 * @module storage_route — serves the filesystem store's signed URLs
 * (GET /storage/v1/object/sign/<bucket>/<path>?token=&expires=), as Supabase Storage does.
 */
import type { Config } from "../shared/config.ts";
import { errorResponse } from "../shared/http_errors.ts";
import type { BlobStore } from "../shared/storage/blob_store.ts";
import { contentTypeOfPath } from "../shared/storage/blob_store.ts";
import { FsBlobStore, parseFsSignedUrl, verifyFsSignedToken } from "../shared/storage/fs_store.ts";
import type { ExtraRoute } from "./function_host.ts";

/** The route; answers null for other paths. */
export function storageRoute(store: BlobStore, config: Config): ExtraRoute {
  return async (req, url) => {
    if (!url.pathname.startsWith("/storage/v1/object/sign/")) return null;
    const signed = parseFsSignedUrl(url);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return errorResponse(405, "method_not_allowed", "Use GET");
    }
    if (!signed || !(store instanceof FsBlobStore)) {
      return errorResponse(400, "invalid_request", "Not a signed URL");
    }
    // The signed message is `bucket/path`: without this check `images%2Fab/cd` would pass as
    // bucket `images/ab`, path `cd` with the signature of `images` + `ab/cd`.
    if (signed.bucket !== store.bucket) return errorResponse(404, "not_found", "Bucket not found");
    const ok = await verifyFsSignedToken({ secret: config.JWT_SECRET, ...signed });
    if (!ok) return errorResponse(403, "forbidden", "Signature is invalid or expired");
    if (!await store.exists(signed.path)) {
      return errorResponse(404, "not_found", "Object not found");
    }
    const bytes = await store.get(signed.path);
    return new Response(req.method === "HEAD" ? null : bytes as Uint8Array<ArrayBuffer>, {
      headers: {
        "content-type": contentTypeOfPath(signed.path),
        "cache-control": "private, max-age=60",
      },
    });
  };
}
