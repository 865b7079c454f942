/**
 * @module api/errors — turns anything thrown in a handler into `{error: {code, message}}` with
 * a fitting status, never a stack trace.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { ApiError } from "../errors.ts";
import { isConnectionError } from "../db.ts";
import type { Logger } from "../log.ts";

/** The JSON error body. */
export function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

const PG_CLIENT_ERRORS: Record<string, [number, string]> = {
  "22P02": [400, "invalid_request"], // invalid_text_representation
  "22021": [400, "invalid_request"], // character_not_in_repertoire (NUL in text)
  "22P05": [400, "invalid_request"], // untranslatable_character (NUL in jsonb)
  "22023": [400, "invalid_request"], // invalid_parameter_value
  "23514": [400, "invalid_request"], // check_violation
  "42501": [403, "forbidden"], // insufficient_privilege
};

/** Maps an error to a Response; unexpected errors are logged and answered without detail. */
export function errorResponse(err: unknown, c: Context, log: Logger): Response {
  if (err instanceof ApiError) {
    return c.json(errorBody(err.code, err.message), err.status as 400, err.headers);
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
    return c.json(errorBody(code, message), status);
  }
  const pgCode = (err as { code?: string })?.code;
  if (pgCode && PG_CLIENT_ERRORS[pgCode]) {
    const [status, code] = PG_CLIENT_ERRORS[pgCode];
    return c.json(errorBody(code, "The request names a value the database rejects"), status as 400);
  }
  if (isConnectionError(err)) {
    log.error("database unavailable", { err });
    return c.json(errorBody("unavailable", "The database is unavailable, try again later"), 503);
  }
  log.error("unhandled error", { err, path: new URL(c.req.url).pathname });
  return c.json(errorBody("internal", "Internal error"), 500);
}
