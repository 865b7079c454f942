// The `download-worker` edge function: wiring only; the handler lives in shared/functions/download_worker.ts.
import { edgeDownloadWorker } from "../../../shared/functions/download_worker.ts";

Deno.serve(edgeDownloadWorker());
