// The `metadata-worker` edge function: wiring only; the handler lives in shared/functions/metadata_worker.ts.
import { edgeMetadataWorker } from "../../../shared/functions/metadata_worker.ts";

Deno.serve(edgeMetadataWorker());
