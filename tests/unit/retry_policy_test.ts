// decideRetry() and backoffSeconds(): what happens after a stage throws.
import assert from "node:assert/strict";
import { backoffSeconds, decideRetry, MAX_BACKOFF_SECONDS } from "../../shared/retry_policy.ts";
import { StageError } from "../../shared/errors.ts";

const noJitter = () => 0;

Deno.test("backoffSeconds() doubles from 2 s and stops at the cap", () => {
  assert.deepEqual([1, 2, 3, 4, 5].map((a) => backoffSeconds(a, undefined, noJitter)), [
    2,
    4,
    8,
    16,
    32,
  ]);
  assert.equal(backoffSeconds(30, undefined, noJitter), MAX_BACKOFF_SECONDS);
});

Deno.test("backoffSeconds() adds at most 20 % jitter", () => {
  for (let i = 0; i < 100; i++) {
    const s = backoffSeconds(3);
    assert.ok(s >= 8 && s <= 10, String(s));
  }
});

Deno.test("backoffSeconds() waits at least what Retry-After asked, up to an hour", () => {
  assert.equal(backoffSeconds(1, 30, noJitter), 30);
  assert.equal(backoffSeconds(4, 1, noJitter), 16);
  assert.equal(backoffSeconds(1, 86_400, noJitter), 3600);
});

Deno.test("decideRetry() fails at once on a permanent error", () => {
  const d = decideRetry(new StageError("not_an_image", "nope"), 1, 5);
  assert.deepEqual(d, { action: "fail", code: "not_an_image", message: "nope" });
});

Deno.test("decideRetry() retries a transient error until the last attempt", () => {
  const err = new StageError("http_status", "Cannot download image: status 503", true, {
    retryAfterSeconds: 7,
  });
  const first = decideRetry(err, 1, 3, noJitter);
  assert.equal(first.action, "retry");
  assert.equal(first.action === "retry" && first.delaySeconds, 7);
  assert.equal(decideRetry(err, 2, 3).action, "retry");
  assert.deepEqual(decideRetry(err, 3, 3), {
    action: "fail",
    code: "http_status",
    message: "Cannot download image: status 503",
  });
});

Deno.test("decideRetry() treats an unexpected error as internal and hides its message", () => {
  const d = decideRetry(new TypeError("x is undefined at secret/path.ts"), 1, 5, noJitter);
  assert.equal(d.action, "retry");
  assert.equal(d.code, "internal");
  assert.doesNotMatch(d.message, /secret/);
});
