/**
 * @module api/context — what the api function needs, and the Hono environment it runs in.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Caller, JwtVerifier } from "../auth.ts";
import type { Db } from "../db.ts";
import type { Logger } from "../log.ts";
import type { RateLimitOptions } from "../rate_limit.ts";
import type { BlobStore } from "../storage/blob_store.ts";

/** Dependencies of the api function. */
export interface ApiDeps {
  db: Db;
  verifier: JwtVerifier;
  log: Logger;
  /** Told when new work was queued (the local scheduler wakes its workers); a no-op on Supabase. */
  onQueued?: () => void;
  /** Told when events may have been written (wakes open event streams sooner). */
  eventsSignal?: EventTarget;
  /** Aborted when the host stops: open event streams end so the server can shut down. */
  shutdownSignal?: AbortSignal;
  /** Where image blobs are (signed URLs of originals). */
  store?: BlobStore;
  /** Token bucket on task creation; none = unlimited. */
  rateLimit?: RateLimitOptions;
  /** ALLOW_PRIVATE_NETWORK: callbackUrl may then name private addresses. Default false. */
  allowPrivateNetwork?: boolean;
  /** How often an open event stream looks for new events, in ms. Default 500. */
  streamPollMs?: number;
  /** The AI_* daily caps from the settings, shown by /stats (admissionSettings(config)). */
  aiBudgets?: object;
}

/** The Hono environment: the verified caller, and a logger bound to the request's id. */
export type ApiEnv = { Variables: { caller: Caller; log: Logger } };

/** The app type routes register on. */
export type ApiApp = OpenAPIHono<ApiEnv>;
