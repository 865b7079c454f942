// errorBody() and errorResponse(): the one `{error: {code, message}}` every HTTP answer carries.
import assert from "node:assert/strict";
import { errorBody, errorResponse } from "../../shared/http_errors.ts";

Deno.test("errorBody() nests code and message under error", () => {
  assert.deepEqual(errorBody("not_found", "Task x not found"), {
    error: { code: "not_found", message: "Task x not found" },
  });
});

Deno.test("errorResponse() answers JSON with the status and body", async () => {
  const res = errorResponse(404, "not_found", "Task x not found");
  assert.equal(res.status, 404);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(await res.json(), errorBody("not_found", "Task x not found"));
});

Deno.test("errorResponse() adds the extra headers it is given", async () => {
  const res = errorResponse(429, "rate_limited", "Too many tasks", { "retry-after": "3" });
  assert.equal(res.status, 429);
  assert.equal(res.headers.get("retry-after"), "3");
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(await res.json(), errorBody("rate_limited", "Too many tasks"));
});

Deno.test("shared/http_errors.ts imports nothing (workers must not pull hono in)", async () => {
  const source = await Deno.readTextFile(new URL("../../shared/http_errors.ts", import.meta.url));
  assert.doesNotMatch(source, /^\s*import\s/m);
});
