// The `api` edge function: wiring only; the handler lives in shared/functions/api.ts.
import { edgeApiHandler } from "../../../shared/functions/api.ts";

Deno.serve(edgeApiHandler());
