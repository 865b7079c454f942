/**
 * @module api/errors — turns anything thrown in a handler into `{error: {code, message}}` with
 * a fitting status, never a stack trace.
 */
import { HTTPException } from "hono/http-exception";
import { ApiError } from "../errors.ts";
import { isConnectionError } from "../db.ts";
import { errorResponse } from "../http_errors.ts";
import type { Logger } from "../log.ts";

const PG_CLIENT_ERRORS: Record<string, [number, string]> = {
  "22P02": [400, "invalid_request"], // invalid_text_representation
  "22021": [400, "invalid_request"], // character_not_in_repertoire (NUL in text)
  "22P05": [400, "invalid_request"], // untranslatable_character (NUL in jsonb)
  "22023": [400, "invalid_request"], // invalid_parameter_value
  "23514": [400, "invalid_request"], // check_violation
  "42501": [403, "forbidden"], // insufficient_privilege
};

/**
 * Maps an error thrown while answering a request for `path` to a Response; unexpected errors
 * are logged and answered without detail.
 */
export function responseForError(err: unknown, path: string, log: Logger): Response {
  if (err instanceof ApiError) {
    return errorResponse(err.status, err.code, err.message, err.headers);
  }
  if (err instanceof HTTPException) {
    const status = err.status;
    const code = status === 413
      ? "payload_too_large"
      : status === 401
      ? "unauthorized"
      : status === 404
      ? "not_found"
      : "invalid_request";
    const message = status === 413 ? "Request body is too large" : err.message || "Bad request";
    return errorResponse(status, code, message);
  }
  const pgCode = (err as { code?: string })?.code;
  // DR422 is ours (darkroom.check_same_request): its message is written for the client.
  if (pgCode === "DR422") {
    return errorResponse(422, "idempotency_key_reused", (err as Error).message);
  }
  if (pgCode && PG_CLIENT_ERRORS[pgCode]) {
    const [status, code] = PG_CLIENT_ERRORS[pgCode];
    return errorResponse(status, code, "The request names a value the database rejects");
  }
  if (isConnectionError(err)) {
    log.error("database unavailable", { err });
    return errorResponse(503, "unavailable", "The database is unavailable, try again later");
  }
  log.error("unhandled error", { err, path });
  return errorResponse(500, "internal", "Internal error");
}
