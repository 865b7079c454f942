// The `ai-worker` edge function: wiring only; the handler lives in shared/functions/ai_worker.ts.
import { edgeAiWorker } from "../../../shared/functions/ai_worker.ts";

Deno.serve(edgeAiWorker());
