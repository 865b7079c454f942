/**
 * @module workers/handler — a stage worker as an HTTP function: what pg_cron + pg_net call on
 * Supabase and what the local scheduler calls in-process. It answers only service_role.
 */
import type { JwtVerifier } from "../auth.ts";
import { ApiError } from "../errors.ts";
import { isConnectionError } from "../db.ts";
import { errorResponse } from "../http_errors.ts";
import { type RunnerDeps, runStageBatch, type StageDefinition } from "../stage_runner.ts";
import type { Stage } from "../stages.ts";

/** Builds the worker's HTTP handler: POST (or GET) runs one batch and answers its summary. */
export function createWorkerHandler<S extends Stage>(
  deps: RunnerDeps & { verifier: JwtVerifier },
  def: StageDefinition<S>,
): (req: Request) => Promise<Response> {
  return async (req) => {
    try {
      const caller = await deps.verifier.callerOf(req);
      if (caller.role !== "service_role") {
        throw new ApiError(403, "forbidden", `${def.source} answers only service_role`);
      }
      if (req.method !== "POST" && req.method !== "GET") {
        throw new ApiError(405, "method_not_allowed", "Use POST");
      }
      await req.body?.cancel();
      const summary = await runStageBatch(deps, def);
      return Response.json(summary);
    } catch (err) {
      if (err instanceof ApiError) {
        return errorResponse(err.status, err.code, err.message, err.headers);
      }
      const unavailable = isConnectionError(err);
      deps.log.error("worker invocation failed", { worker: def.source, err });
      return unavailable
        ? errorResponse(503, "unavailable", "The database is unavailable")
        : errorResponse(500, "internal", "Internal error");
    }
  };
}
