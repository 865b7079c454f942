/**
 * @module compute/protocol — the messages between the compute pool and its Web Workers, and the
 * explicit error encoding that lets a StageError thrown in a worker come back as one (structured
 * clone would turn it into a plain Error and drop its code).
 */
import type { AnalysisInput } from "../../shared/ai/types.ts";
import { StageError, TASK_ERROR_CODES, type TaskErrorCode } from "../../shared/errors.ts";

/** A call sent to a worker. */
export type ComputeRequest =
  | { id: number; op: "extract"; bytes: Uint8Array; maxPixels: number }
  | { id: number; op: "analyzeLocal"; input: Omit<AnalysisInput, "signal"> };

/** An error as it crosses the worker boundary. */
export type SerializedError =
  | {
    kind: "stage";
    code: TaskErrorCode;
    message: string;
    retryable: boolean;
    retryAfterSeconds?: number;
  }
  | { kind: "error"; name: string; message: string };

/** A worker's answer to the call with the same `id`, or its word that its modules are loaded. */
export type ComputeReply =
  | { ready: true }
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: SerializedError };

/** Encodes what a worker caught. */
export function serializeError(error: unknown): SerializedError {
  if (error instanceof StageError) {
    return {
      kind: "stage",
      code: error.code,
      message: error.message,
      retryable: error.retryable,
      retryAfterSeconds: error.retryAfterSeconds,
    };
  }
  if (error instanceof Error) return { kind: "error", name: error.name, message: error.message };
  return { kind: "error", name: "Error", message: String(error) };
}

/** Decodes a worker's error: a StageError with the same fields, else an Error. */
export function deserializeError(error: SerializedError): Error {
  // The worker runs our own code, but the code is checked anyway: an unknown one is not a
  // StageError the retry policy should trust.
  if (error.kind === "stage" && (TASK_ERROR_CODES as readonly string[]).includes(error.code)) {
    return new StageError(error.code, error.message, error.retryable, {
      retryAfterSeconds: error.retryAfterSeconds,
    });
  }
  const out = new Error(error.message);
  if (error.kind === "error") out.name = error.name;
  return out;
}
