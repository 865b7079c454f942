// The `ai-worker` edge function: wiring only; the handler lives in shared/functions.ts.
import { edgeDeps } from "../../../shared/edge.ts";
import { createAiWorker } from "../../../shared/functions.ts";

Deno.serve(createAiWorker(edgeDeps()));
