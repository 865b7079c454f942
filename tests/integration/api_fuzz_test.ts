// Bad input never gets a 5xx: arbitrary JSON bodies, headers and path segments sent to the api
// (fast-check, on a real database) always get a 2xx or a 4xx JSON error.
import assert from "node:assert/strict";
import fc from "fast-check";
import { openTestDb } from "../_helpers/db.ts";
import { createApiApp } from "../../shared/api/app.ts";
import { JwtVerifier, signJwt } from "../../shared/auth.ts";
import { DEV_JWT_SECRET } from "../../shared/config.ts";
import { silentLogger } from "../../shared/log.ts";

Deno.test({
  name: "api answers arbitrary input with 2xx or a 4xx JSON error, never 5xx",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const t = await openTestDb();
    try {
      const app = createApiApp({
        db: t.db,
        verifier: new JwtVerifier({ secret: DEV_JWT_SECRET }),
        log: silentLogger,
        rateLimit: { perMinute: 1_000_000, burst: 1_000_000 },
      });
      const token = await signJwt(
        { role: "authenticated", sub: crypto.randomUUID() },
        DEV_JWT_SECRET,
      );
      const check = async (res: Response, what: string) => {
        const text = await res.text();
        assert.ok(res.status < 500, `${what} -> ${res.status} ${text}`);
        if (res.status >= 400) {
          const body = JSON.parse(text);
          assert.equal(typeof body.error.code, "string", what);
          assert.equal(typeof body.error.message, "string", what);
        }
      };
      const anyBody = fc.oneof(
        fc.jsonValue({ stringUnit: "binary" }),
        fc.record({
          imageUrl: fc.oneof(
            fc.string({ unit: "binary" }),
            fc.webUrl(),
            fc.constant("http://e.com/\u0000.jpg"),
          ),
          callbackUrl: fc.option(fc.oneof(fc.string(), fc.webUrl()), { nil: undefined }),
          options: fc.option(fc.jsonValue({ stringUnit: "binary" }), { nil: undefined }),
        }),
        fc.record({ tasks: fc.array(fc.jsonValue({ stringUnit: "binary" }), { maxLength: 5 }) }),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom("/api/tasks", "/api/tasks/batch"),
          anyBody,
          fc.option(fc.string({ maxLength: 300 }), { nil: undefined }),
          async (path, body, key) => {
            const headers: Record<string, string> = {
              authorization: `Bearer ${token}`,
              "content-type": "application/json",
            };
            if (key !== undefined && /^[\t\x20-\x7e]*$/.test(key)) headers["idempotency-key"] = key;
            const res = await app.request(path, {
              method: "POST",
              headers,
              body: JSON.stringify(body),
            });
            await check(res, `POST ${path} ${JSON.stringify(body)}`);
          },
        ),
        { numRuns: 150 },
      );
      await fc.assert(
        fc.asyncProperty(
          fc.string({ maxLength: 80, unit: "binary" }),
          fc.constantFrom("", "/events", "/cancel", "/retry", "/image"),
          async (segment, suffix) => {
            const path = `/api/tasks/${encodeURIComponent(segment)}${suffix}`;
            const method = suffix === "/cancel" || suffix === "/retry" ? "POST" : "GET";
            const res = await app.request(path, {
              method,
              headers: { authorization: `Bearer ${token}` },
            });
            await check(res, `${method} ${path}`);
          },
        ),
        { numRuns: 150 },
      );
      await fc.assert(
        fc.asyncProperty(
          fc.string({ maxLength: 40 }),
          fc.string({ maxLength: 20 }),
          async (tag, limit) => {
            const q = new URLSearchParams({ tag, limit });
            const res = await app.request(`/api/images?${q}`, {
              headers: { authorization: `Bearer ${token}` },
            });
            await check(res, `GET /api/images?${q}`);
          },
        ),
        { numRuns: 100 },
      );
    } finally {
      await t.close();
    }
  },
});
