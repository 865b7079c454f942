/**
 * @module http_errors — the one JSON error body every HTTP answer of Darkroom carries,
 * `{error: {code, message}}`. Plain Web APIs only: worker functions and the local platform use it
 * without pulling hono in.
 */

/** The JSON error body `{error: {code, message}}`. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** Builds the JSON error body. */
export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

/**
 * A JSON error Response: `status`, the body `{error: {code, message}}` and any extra `headers`
 * (e.g. Retry-After).
 *
 * @example
 * return errorResponse(404, "not_found", `Task ${id} not found`);
 */
export function errorResponse(
  status: number,
  code: string,
  message: string,
  headers?: HeadersInit,
): Response {
  return Response.json(errorBody(code, message), { status, headers });
}
