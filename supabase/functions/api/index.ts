// The `api` edge function: wiring only; the handler lives in shared/functions.ts.
import { edgeDeps } from "../../../shared/edge.ts";
import { createApiHandler } from "../../../shared/functions.ts";

Deno.serve(createApiHandler(edgeDeps()));
