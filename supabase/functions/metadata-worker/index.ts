// The `metadata-worker` edge function: wiring only; the handler lives in shared/functions.ts.
import { edgeDeps } from "../../../shared/edge.ts";
import { createMetadataWorker } from "../../../shared/functions.ts";

Deno.serve(createMetadataWorker(edgeDeps()));
