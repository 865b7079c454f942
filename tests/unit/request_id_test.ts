// requestIdOf() and the api's request id: kept from a plain X-Request-Id, else made, and echoed.
import assert from "node:assert/strict";
import { createApiApp, requestIdOf } from "../../shared/api/app.ts";
import { JwtVerifier } from "../../shared/auth.ts";
import type { Db } from "../../shared/db.ts";
import { silentLogger } from "../../shared/log.ts";
import { isUuid } from "../../shared/uuid.ts";

const withId = (id: string) => new Request("http://x/", { headers: { "x-request-id": id } });

Deno.test("requestIdOf() keeps a plain X-Request-Id", () => {
  assert.equal(requestIdOf(withId("req-42.a:b_c")), "req-42.a:b_c");
});

Deno.test("requestIdOf() makes a UUID when the header is missing, overlong or not plain", () => {
  for (
    const req of [new Request("http://x/"), withId("a".repeat(129)), withId("a b"), withId("{}")]
  ) {
    assert.ok(isUuid(requestIdOf(req)));
  }
});

Deno.test("the api echoes the request id, on error answers too", async () => {
  // No route here reaches the database: a 401 is answered before any query.
  const app = createApiApp({
    db: {} as Db,
    verifier: new JwtVerifier({ secret: "s".repeat(32) }),
    log: silentLogger,
  });
  const sent = await app.request("/api/tasks", { headers: { "x-request-id": "abc-1" } });
  assert.equal(sent.status, 401);
  assert.equal(sent.headers.get("x-request-id"), "abc-1");
  const made = await app.request("/api/tasks");
  assert.ok(isUuid(made.headers.get("x-request-id") ?? ""));
  assert.equal((await made.json()).error.code, "unauthorized");
});
