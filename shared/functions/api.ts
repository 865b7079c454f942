/**
 * @module functions/api — the `api` function: the Hono app over the database, the verifier and
 * the blob store (signed URLs). No stage runs here, so no image decoder is imported.
 */
import { admissionSettings } from "../ai/admission.ts";
import { createApiApp } from "../api/app.ts";
import { edgeDeps } from "../edge.ts";
import type { BaseDeps, Handler } from "./common.ts";

/** What the api needs besides {@linkcode BaseDeps}; all optional, for the local platform. */
export interface ApiFunctionDeps extends BaseDeps {
  /** Told when the api queued work (local scheduler wake-up). */
  onQueued?: () => void;
  /** Dispatches "events" when new events may exist (wakes SSE streams). */
  eventsSignal?: EventTarget;
  /** Aborted when the host stops (ends open event streams). */
  shutdownSignal?: AbortSignal;
}

/** The `api` function. */
export function createApiHandler(deps: ApiFunctionDeps): Handler {
  const app = createApiApp({
    db: deps.db,
    verifier: deps.verifier,
    log: deps.log.child({ fn: "api" }),
    onQueued: deps.onQueued,
    eventsSignal: deps.eventsSignal,
    shutdownSignal: deps.shutdownSignal,
    store: deps.store,
    rateLimit: {
      perMinute: deps.config.RATE_LIMIT_PER_MINUTE,
      burst: deps.config.RATE_LIMIT_BURST,
    },
    allowPrivateNetwork: deps.config.ALLOW_PRIVATE_NETWORK,
    aiBudgets: admissionSettings(deps.config, 0),
  });
  return async (req) => await app.fetch(req);
}

/** The deployed `api`, from the instance's environment (a bad one stops it starting). */
export function edgeApiHandler(base: BaseDeps = edgeDeps()): Handler {
  return createApiHandler(base);
}
