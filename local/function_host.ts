/**
 * @module function_host — serves every function's handler at /functions/v1/<name>, the way the
 * Supabase edge runtime does: the handler sees the path from /<name> on.
 */
import { errorResponse } from "../shared/http_errors.ts";

/** A handler per function name. */
export type FunctionTable = Record<string, (req: Request) => Promise<Response>>;

/** Extra routes of the platform (storage), tried before the 404. */
export type ExtraRoute = (req: Request, url: URL) => Promise<Response | null> | Response | null;

/**
 * Builds the host's request handler. Like Supabase's gateway, it sets X-Forwarded-For to the
 * address the request came from, replacing whatever the client sent.
 */
export function createFunctionHost(functions: FunctionTable, extras: ExtraRoute[] = []) {
  return async (req: Request, remoteAddress?: string): Promise<Response> => {
    const url = new URL(req.url);
    const m = /^\/functions\/v1\/([a-z0-9_-]+)(\/.*)?$/.exec(url.pathname);
    if (m && functions[m[1]]) {
      const inner = new URL(req.url);
      inner.pathname = `/${m[1]}${m[2] ?? ""}`;
      const forwarded = new Request(inner, req);
      forwarded.headers.delete("x-real-ip");
      if (remoteAddress) forwarded.headers.set("x-forwarded-for", remoteAddress);
      else forwarded.headers.delete("x-forwarded-for");
      return await functions[m[1]](forwarded);
    }
    for (const route of extras) {
      const res = await route(req, url);
      if (res) return res;
    }
    return errorResponse(404, "not_found", `No route ${req.method} ${url.pathname}`);
  };
}
