// The `tag-indexer-worker` edge function: wiring only; the handler lives in shared/functions/tag_indexer_worker.ts.
import { edgeTagIndexerWorker } from "../../../shared/functions/tag_indexer_worker.ts";

Deno.serve(edgeTagIndexerWorker());
