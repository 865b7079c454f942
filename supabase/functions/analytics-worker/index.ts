// The `analytics-worker` edge function: wiring only; the handler lives in shared/functions/analytics_worker.ts.
import { edgeAnalyticsWorker } from "../../../shared/functions/analytics_worker.ts";

Deno.serve(edgeAnalyticsWorker());
