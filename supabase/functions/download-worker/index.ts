// The `download-worker` edge function: wiring only; the handler lives in shared/functions.ts.
import { edgeDeps } from "../../../shared/edge.ts";
import { createDownloadWorker } from "../../../shared/functions.ts";

Deno.serve(createDownloadWorker(edgeDeps()));
