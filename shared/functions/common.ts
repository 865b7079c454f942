/**
 * @module functions/common — what every function is built from, and the pieces the workers
 * share. Types and light code only: each function's module imports this, so nothing heavy may.
 */
import type { JwtVerifier } from "../auth.ts";
import type { Config } from "../config.ts";
import type { Db } from "../db.ts";
import type { Logger } from "../log.ts";
import type { RunnerDeps } from "../stage_runner.ts";
import type { BlobStore } from "../storage/blob_store.ts";

/** What every function needs; built from the environment on Supabase, by the platform locally. */
export interface BaseDeps {
  config: Config;
  db: Db;
  store: BlobStore;
  verifier: JwtVerifier;
  log: Logger;
  /** Aborted when the process is stopping: workers read nothing more and give back what they hold. */
  stopSignal?: AbortSignal;
}

/** A function's HTTP handler. */
export type Handler = (req: Request) => Promise<Response>;

/** The stage runner's dependencies for the worker function `fn`. */
export function runnerDeps(
  deps: BaseDeps,
  fn: string,
): RunnerDeps & { verifier: JwtVerifier } {
  return {
    db: deps.db,
    log: deps.log.child({ fn }),
    maxAttempts: deps.config.MAX_ATTEMPTS,
    stopSignal: deps.stopSignal,
    stopGraceMs: deps.config.STOP_TIMEOUT_MS,
    verifier: deps.verifier,
  };
}
