// Every route of the api's Hono app is in its OpenAPI document (and nothing else is): the docs
// page (/docs) renders that document, so a route missing from it would be missing from the docs.
import assert from "node:assert/strict";
import { createApiApp } from "../../shared/api/app.ts";
import { JwtVerifier } from "../../shared/auth.ts";
import type { Db } from "../../shared/db.ts";
import { silentLogger } from "../../shared/log.ts";

/** Routes that serve the document itself, not an operation of it. */
const NOT_OPERATIONS = new Set(["GET /api/openapi.json"]);

function app() {
  // Nothing here reaches the database: the routes are listed and the document is built in memory.
  return createApiApp({
    db: {} as Db,
    verifier: new JwtVerifier({ secret: "s".repeat(32) }),
    log: silentLogger,
  });
}

/** "/api/tasks/:id" -> "/api/tasks/{id}", as OpenAPI writes path parameters. */
const openApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?/g, "{$1}");

Deno.test("every route of the api app is an operation of /openapi.json, and every operation a route", async () => {
  const api = app();
  const routes = new Set(
    api.routes
      // Middleware (app.use) registers as ALL: not an endpoint.
      .filter((r) => r.method !== "ALL")
      .map((r) => `${r.method} ${openApiPath(r.path)}`)
      .filter((r) => !NOT_OPERATIONS.has(r)),
  );
  const res = await api.request("/api/openapi.json");
  assert.equal(res.status, 200);
  const doc = await res.json() as { paths: Record<string, Record<string, unknown>> };
  const documented = new Set(
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).filter((m) => ["get", "post", "put", "patch", "delete"].includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`)
    ),
  );
  assert.ok(routes.size >= 10, `found only ${routes.size} routes: ${[...routes].join(", ")}`);
  assert.deepEqual([...routes].filter((r) => !documented.has(r)), [], "routes not in the document");
  assert.deepEqual([...documented].filter((r) => !routes.has(r)), [], "documented, not routed");
});

Deno.test("openApiPath() writes Hono's path parameters as OpenAPI's", () => {
  assert.equal(openApiPath("/api/tasks/:id/events"), "/api/tasks/{id}/events");
  assert.equal(openApiPath("/api/x/:a{[0-9]+}/:b"), "/api/x/{a}/{b}");
});
