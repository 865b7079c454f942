/**
 * @module workers/handler — a worker as an HTTP function: what pg_cron + pg_net call on Supabase
 * and what the local scheduler calls in-process. Stage workers and event subscribers alike run
 * one batch per call and answer its summary; they answer only service_role.
 */
import type { JwtVerifier } from "../auth.ts";
import { ApiError } from "../errors.ts";
import { isConnectionError } from "../db.ts";
import { errorResponse } from "../http_errors.ts";
import type { Logger } from "../log.ts";
import { type RunnerDeps, runStageBatch, type StageDefinition } from "../stage_runner.ts";
import { runSubscriberBatch, type SubscriberDefinition } from "../subscriber_runner.ts";
import type { Stage } from "../stages.ts";

/**
 * Builds a worker's HTTP handler: POST (or GET) from service_role runs `runBatch` once and
 * answers its summary as JSON.
 */
export function createBatchHandler(
  deps: { verifier: JwtVerifier; log: Logger },
  worker: string,
  runBatch: () => Promise<{ read: number }>,
): (req: Request) => Promise<Response> {
  return async (req) => {
    try {
      const caller = await deps.verifier.callerOf(req);
      if (caller.role !== "service_role") {
        throw new ApiError(403, "forbidden", `${worker} answers only service_role`);
      }
      if (req.method !== "POST" && req.method !== "GET") {
        throw new ApiError(405, "method_not_allowed", "Use POST");
      }
      await req.body?.cancel();
      return Response.json(await runBatch());
    } catch (err) {
      if (err instanceof ApiError) {
        return errorResponse(err.status, err.code, err.message, err.headers);
      }
      const unavailable = isConnectionError(err);
      deps.log.error("worker invocation failed", { worker, err });
      return unavailable
        ? errorResponse(503, "unavailable", "The database is unavailable")
        : errorResponse(500, "internal", "Internal error");
    }
  };
}

/** A stage worker's HTTP handler. */
export function createWorkerHandler<S extends Stage>(
  deps: RunnerDeps & { verifier: JwtVerifier },
  def: StageDefinition<S>,
): (req: Request) => Promise<Response> {
  return createBatchHandler(deps, def.source, () => runStageBatch(deps, def));
}

/** An event subscriber's HTTP handler. */
export function createSubscriberHandler(
  deps: RunnerDeps & { verifier: JwtVerifier },
  def: SubscriberDefinition,
): (req: Request) => Promise<Response> {
  return createBatchHandler(deps, def.source, () => runSubscriberBatch(deps, def));
}
