// The `notification-worker` edge function: wiring only; the handler lives in shared/functions/notification_worker.ts.
import { edgeNotificationWorker } from "../../../shared/functions/notification_worker.ts";

Deno.serve(edgeNotificationWorker());
