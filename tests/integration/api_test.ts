// The api function's HTTP contract, through app.request() on a real database: validation,
// errors as JSON, JWT checks, idempotency, batch, retry/cancel and who sees what.
import assert from "node:assert/strict";
import { openTestDb } from "../_helpers/db.ts";
import { createApiApp } from "../../shared/api/app.ts";
import { JwtVerifier, signJwt } from "../../shared/auth.ts";
import { DEV_JWT_SECRET } from "../../shared/config.ts";
import { silentLogger } from "../../shared/log.ts";
import { SignJWT } from "jose";

const secret = DEV_JWT_SECRET;
// deno-lint-ignore no-explicit-any
type Json = any;

Deno.test({
  name: "api",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const tdb = await openTestDb();
    const app = createApiApp({
      db: tdb.db,
      verifier: new JwtVerifier({ secret }),
      log: silentLogger,
    });
    const alice = crypto.randomUUID();
    const bob = crypto.randomUUID();
    const tokens = {
      alice: await signJwt({ role: "authenticated", sub: alice }, secret),
      bob: await signJwt({ role: "authenticated", sub: bob }, secret),
      anon: await signJwt({ role: "anon" }, secret),
      service: await signJwt({ role: "service_role" }, secret),
    };
    const call = async (
      method: string,
      path: string,
      opts: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
    ) => {
      const headers: Record<string, string> = { ...opts.headers };
      const token = opts.token === undefined ? tokens.alice : opts.token;
      if (token) headers.authorization = `Bearer ${token}`;
      let body: string | undefined;
      if (opts.body !== undefined) {
        body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
        headers["content-type"] ??= "application/json";
      }
      const res = await app.request(`/api${path}`, { method, headers, body });
      const text = await res.text();
      let json: Json;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: res.status, json, headers: res.headers };
    };
    const expectError = (
      r: { status: number; json: Json },
      status: number,
      code: string,
      text?: RegExp,
    ) => {
      assert.equal(r.status, status, JSON.stringify(r.json));
      assert.equal(r.json.error.code, code);
      assert.equal(typeof r.json.error.message, "string");
      if (text) assert.match(r.json.error.message, text);
      assert.doesNotMatch(JSON.stringify(r.json), /\bat .*\.ts:\d+/, "no stack trace");
    };

    try {
      await t.step("POST /tasks accepts an image URL with 202", async () => {
        const r = await call("POST", "/tasks", { body: { imageUrl: "https://example.com/a.jpg" } });
        assert.equal(r.status, 202);
        assert.match(r.json.taskId, /^[0-9a-f-]{36}$/);
        assert.match(r.json.traceId, /^[0-9a-f-]{36}$/);
        assert.equal(r.json.status, "queued");
        const got = await call("GET", `/tasks/${r.json.taskId}`);
        assert.equal(got.status, 200);
        assert.equal(got.json.imageUrl, "https://example.com/a.jpg");
        assert.deepEqual(got.json.attempts, { download: 0, metadata: 0, ai: 0 });
        assert.equal(got.json.image, null);
        assert.equal(got.json.error, null);
      });

      await t.step("POST /tasks rejects an ftp URL with 400", async () => {
        const r = await call("POST", "/tasks", { body: { imageUrl: "ftp://example.com/a.jpg" } });
        expectError(r, 400, "invalid_request", /imageUrl/);
      });

      await t.step(
        "POST /tasks rejects a missing imageUrl, an unknown field and a bad callbackUrl",
        async () => {
          expectError(
            await call("POST", "/tasks", { body: {} }),
            400,
            "invalid_request",
            /imageUrl/,
          );
          expectError(
            await call("POST", "/tasks", { body: { imageUrl: "https://e.com/a.jpg", extra: 1 } }),
            400,
            "invalid_request",
          );
          expectError(
            await call("POST", "/tasks", {
              body: { imageUrl: "https://e.com/a.jpg", callbackUrl: "nope" },
            }),
            400,
            "invalid_request",
            /callbackUrl/,
          );
          expectError(
            await call("POST", "/tasks", {
              body: { imageUrl: "https://e.com/" + "a".repeat(2100) },
            }),
            400,
            "invalid_request",
            /2048/,
          );
        },
      );

      await t.step("POST /tasks rejects NUL in options and stores the URL as parsed", async () => {
        expectError(
          await call("POST", "/tasks", {
            body: { imageUrl: "https://e.com/a.jpg", options: { note: "a\u0000b" } },
          }),
          400,
          "invalid_request",
          /NUL/,
        );
        const r = await call("POST", "/tasks", {
          body: { imageUrl: "HTTPS://E.com/a b\u0000.jpg" },
        });
        assert.equal(r.status, 202);
        const got = await call("GET", `/tasks/${r.json.taskId}`);
        assert.equal(got.json.imageUrl, "https://e.com/a%20b%00.jpg");
      });

      await t.step(
        "POST /tasks rejects malformed JSON with 400 and a non-JSON body with 415",
        async () => {
          expectError(await call("POST", "/tasks", { body: "{not json" }), 400, "invalid_request");
          expectError(
            await call("POST", "/tasks", {
              body: "imageUrl=x",
              headers: { "content-type": "text/plain" },
            }),
            415,
            "unsupported_media_type",
          );
        },
      );

      await t.step("POST /tasks rejects a body over 1 MiB with 413", async () => {
        const r = await call("POST", "/tasks", {
          body: JSON.stringify({
            imageUrl: "https://e.com/a.jpg",
            options: { x: "a".repeat(1_100_000) },
          }),
        });
        expectError(r, 413, "payload_too_large");
      });

      await t.step(
        "Idempotency-Key returns the first task again for the same body, 422 for another",
        async () => {
          const headers = { "idempotency-key": "same-key" };
          const a = await call("POST", "/tasks", {
            body: { imageUrl: "https://e.com/1.jpg" },
            headers,
          });
          const b = await call("POST", "/tasks", {
            body: { imageUrl: "https://e.com/1.jpg" },
            headers,
          });
          assert.equal(a.status, 202);
          assert.equal(b.status, 202);
          assert.equal(b.json.taskId, a.json.taskId);
          const other = await call("POST", "/tasks", {
            body: { imageUrl: "https://e.com/2.jpg" },
            headers,
          });
          expectError(other, 422, "idempotency_key_reused", /different request/);
          const batch = await call("POST", "/tasks/batch", {
            body: { tasks: [{ imageUrl: "https://e.com/3.jpg", idempotencyKey: "same-key" }] },
          });
          expectError(batch, 422, "idempotency_key_reused");
          const c = await call("POST", "/tasks", {
            token: tokens.bob,
            body: { imageUrl: "https://e.com/1.jpg" },
            headers,
          });
          assert.notEqual(c.json.taskId, a.json.taskId, "another user's key is their own");
        },
      );

      await t.step(
        "POST /tasks/batch creates up to 100 tasks in order and rejects 101",
        async () => {
          const tasks = Array.from(
            { length: 3 },
            (_, i) => ({ imageUrl: `https://e.com/${i}.jpg` }),
          );
          const r = await call("POST", "/tasks/batch", { body: { tasks } });
          assert.equal(r.status, 202);
          assert.equal(r.json.tasks.length, 3);
          for (let i = 0; i < 3; i++) {
            const got = await call("GET", `/tasks/${r.json.tasks[i].taskId}`);
            assert.equal(got.json.imageUrl, tasks[i].imageUrl);
          }
          const tooMany = Array.from({ length: 101 }, () => ({ imageUrl: "https://e.com/x.jpg" }));
          expectError(
            await call("POST", "/tasks/batch", { body: { tasks: tooMany } }),
            400,
            "invalid_request",
            /100/,
          );
          expectError(
            await call("POST", "/tasks/batch", { body: { tasks: [] } }),
            400,
            "invalid_request",
          );
        },
      );

      await t.step(
        "GET /tasks/:id answers 400 for a non-UUID and 404 for an unknown task",
        async () => {
          expectError(await call("GET", "/tasks/not-a-uuid"), 400, "invalid_request", /UUID/);
          expectError(await call("GET", `/tasks/${crypto.randomUUID()}`), 404, "not_found");
          expectError(await call("GET", `/tasks/${crypto.randomUUID()}/events`), 404, "not_found");
        },
      );

      await t.step("GET /tasks/:id/events lists task.created first", async () => {
        const r = await call("POST", "/tasks", { body: { imageUrl: "https://e.com/ev.jpg" } });
        const ev = await call("GET", `/tasks/${r.json.taskId}/events`);
        assert.equal(ev.status, 200);
        assert.equal(ev.json[0].eventType, "task.created");
        assert.equal(ev.json[0].traceId, r.json.traceId);
        assert.equal(ev.json[0].source, "api");
      });

      await t.step(
        "cancel stops a queued task; a second cancel and a retry of it are 409",
        async () => {
          const r = await call("POST", "/tasks", { body: { imageUrl: "https://e.com/c.jpg" } });
          const c = await call("POST", `/tasks/${r.json.taskId}/cancel`);
          assert.equal(c.status, 202);
          assert.equal(c.json.status, "cancelled");
          expectError(await call("POST", `/tasks/${r.json.taskId}/cancel`), 409, "conflict");
          expectError(await call("POST", `/tasks/${r.json.taskId}/retry`), 409, "conflict");
          expectError(await call("POST", `/tasks/${crypto.randomUUID()}/retry`), 404, "not_found");
        },
      );

      await t.step("a request without a valid JWT is 401", async () => {
        expectError(await call("GET", "/stats", { token: null }), 401, "unauthorized", /Missing/);
        expectError(await call("GET", "/stats", { token: "garbage" }), 401, "unauthorized");
        const wrong = await signJwt({ role: "authenticated", sub: alice }, "x".repeat(40));
        expectError(await call("GET", "/stats", { token: wrong }), 401, "unauthorized");
        const expired = await new SignJWT({ role: "authenticated", sub: alice })
          .setProtectedHeader({ alg: "HS256" })
          .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
          .sign(new TextEncoder().encode(secret));
        expectError(
          await call("GET", "/stats", { token: expired }),
          401,
          "unauthorized",
          /expired/,
        );
        const none = `${btoa(JSON.stringify({ alg: "none", typ: "JWT" }))}.${
          btoa(JSON.stringify({ role: "service_role" }))
        }.`.replaceAll("=", "");
        expectError(await call("GET", "/stats", { token: none }), 401, "unauthorized");
      });

      await t.step("GET /health and /openapi.json need no JWT", async () => {
        const h = await call("GET", "/health", { token: null });
        assert.equal(h.status, 200);
        assert.equal(h.json.ok, true);
        assert.equal(h.json.db, "ok");
        const doc = await call("GET", "/openapi.json", { token: null });
        assert.equal(doc.status, 200);
        for (
          const path of [
            "/tasks",
            "/tasks/batch",
            "/tasks/{id}",
            "/tasks/{id}/events",
            "/events/stream",
            "/images",
            "/stats",
            "/health",
          ]
        ) {
          assert.ok(doc.json.paths[`/api${path}`] ?? doc.json.paths[path], `documents ${path}`);
        }
      });

      await t.step("an unknown route is a JSON 404", async () => {
        expectError(await call("GET", "/nope"), 404, "not_found");
      });

      await t.step("a user cannot read another user's task or events", async () => {
        const r = await call("POST", "/tasks", { body: { imageUrl: "https://e.com/private.jpg" } });
        expectError(
          await call("GET", `/tasks/${r.json.taskId}`, { token: tokens.bob }),
          404,
          "not_found",
        );
        expectError(
          await call("GET", `/tasks/${r.json.taskId}/events`, { token: tokens.bob }),
          404,
          "not_found",
        );
        expectError(
          await call("POST", `/tasks/${r.json.taskId}/cancel`, { token: tokens.bob }),
          404,
          "not_found",
        );
        expectError(
          await call("GET", `/tasks/${r.json.taskId}`, { token: tokens.anon }),
          404,
          "not_found",
        );
        const svc = await call("GET", `/tasks/${r.json.taskId}`, { token: tokens.service });
        assert.equal(svc.status, 200, "service_role sees everything");
      });

      await t.step("an anon-key task is readable by its id but counted for nobody", async () => {
        const r = await call("POST", "/tasks", {
          token: tokens.anon,
          body: { imageUrl: "https://e.com/anon.jpg" },
        });
        assert.equal(r.status, 202);
        const got = await call("GET", `/tasks/${r.json.taskId}`, { token: tokens.anon });
        assert.equal(got.status, 200);
        const stats = await call("GET", "/stats", { token: tokens.anon });
        assert.equal(stats.status, 200);
        assert.equal(stats.json.scope, "own");
        assert.equal(
          Object.values(stats.json.tasks as Record<string, number>).reduce((a, b) => a + b, 0),
          0,
        );
      });

      await t.step("GET /stats counts only the caller's tasks unless service_role", async () => {
        const mine = await call("GET", "/stats", { token: tokens.bob });
        const total = Object.values(mine.json.tasks as Record<string, number>).reduce(
          (a, b) => a + b,
          0,
        );
        assert.equal(total, 1, "bob made one task");
        const all = await call("GET", "/stats", { token: tokens.service });
        assert.equal(all.json.scope, "all");
        const allTotal = Object.values(all.json.tasks as Record<string, number>).reduce(
          (a, b) => a + b,
          0,
        );
        assert.ok(allTotal > total);
        assert.ok("image_download" in all.json.queues);
      });

      await t.step("GET /images requires a tag", async () => {
        expectError(await call("GET", "/images"), 400, "invalid_request", /tag/);
        const r = await call("GET", "/images?tag=Cat");
        assert.equal(r.status, 200);
        assert.equal(r.json.tag, "cat");
        assert.deepEqual(r.json.images, []);
      });
    } finally {
      await tdb.close();
    }
  },
});
