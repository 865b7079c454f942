// Regression tests for the findings of the attack on loopback (issue 6) that need the whole
// platform (findings 4, 6, 7, 8): each fails on the code as it was before the fix. The SQL-only
// findings are in tests/integration/security_findings_test.ts, the decoder findings (1–3) in
// tests/integration/decoder_bounds_test.ts and e2e/health_under_bombs_test.ts.
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { asRole } from "../_helpers/db.ts";
import { startTestPlatform } from "../_helpers/platform.ts";

Deno.test("finding 4: an Idempotency-Key is refused with the shared anon key, over HTTP and in SQL", async (t) => {
  const p = await startTestPlatform();
  try {
    const post = (path: string, token: string, body: unknown, key?: string) =>
      fetch(`${p.api}${path}`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          ...(key ? { "idempotency-key": key } : {}),
        },
        body: JSON.stringify(body),
      });
    const anon = p.platform.anonKey;

    await t.step(
      "POST /tasks with the anon key and a key is 400, and creates nothing",
      async () => {
        const res = await post("/tasks", anon, { imageUrl: "https://e.com/a.jpg" }, "shared-key");
        assert.equal(res.status, 400);
        const body = await res.json();
        assert.equal(body.error.code, "idempotency_key_requires_user");
        assert.match(body.error.message, /Idempotency-Key/);
        const [{ n }] = await p.platform.db.query<{ n: number }>(
          "select count(*)::integer as n from public.tasks",
        );
        assert.equal(n, 0);
      },
    );

    await t.step("POST /tasks/batch with the anon key and an idempotencyKey is 400", async () => {
      const res = await post("/tasks/batch", anon, {
        tasks: [{ imageUrl: "https://e.com/a.jpg" }, {
          imageUrl: "https://e.com/b.jpg",
          idempotencyKey: "shared-key",
        }],
      });
      assert.equal(res.status, 400);
      const body = await res.json();
      assert.equal(body.error.code, "idempotency_key_requires_user");
      assert.match(body.error.message, /tasks\.1\.idempotencyKey/);
    });

    await t.step("the same key from two users gives each their own task", async () => {
      const alice = await p.userToken();
      const bob = await p.userToken();
      const a1 = await (await post("/tasks", alice, { imageUrl: "https://e.com/1.jpg" }, "k"))
        .json();
      const a2 = await (await post("/tasks", alice, { imageUrl: "https://e.com/1.jpg" }, "k"))
        .json();
      const b1 = await (await post("/tasks", bob, { imageUrl: "https://e.com/1.jpg" }, "k"))
        .json();
      assert.equal(a2.taskId, a1.taskId);
      assert.notEqual(b1.taskId, a1.taskId);
    });

    await t.step("create_task() as anon with a key raises 22023, without the api", async () => {
      const err = await asRole(p.platform.db, "anon", {}, (tx) =>
        tx.query(
          "select * from darkroom.create_task(p_image_url => 'https://e.com/x.jpg', p_idempotency_key => 'k')",
        )) as { code?: string; message?: string };
      assert.equal(err.code, "22023", String(err.message));
      const ok = await asRole(p.platform.db, "anon", {}, (tx) =>
        tx.query<{ created: boolean }>(
          "select * from darkroom.create_task(p_image_url => 'https://e.com/x.jpg')",
        )) as { created: boolean }[];
      assert.equal(ok[0].created, true, "without a key anon still creates");
    });
  } finally {
    await p.close();
  }
});

Deno.test("finding 6: a token without exp is refused (401) by the api and the workers", async () => {
  const p = await startTestPlatform();
  try {
    const secret = new TextEncoder().encode(p.config.JWT_SECRET);
    const noExp = (claims: Record<string, unknown>) =>
      new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuedAt().sign(
        secret,
      );
    const user = await noExp({ role: "authenticated", sub: crypto.randomUUID() });
    const res = await fetch(`${p.api}/stats`, { headers: { authorization: `Bearer ${user}` } });
    assert.equal(res.status, 401);
    assert.match((await res.json()).error.message, /exp/);
    const service = await noExp({ role: "service_role" });
    const worker = await fetch(`${p.platform.url}/functions/v1/download-worker`, {
      method: "POST",
      headers: { authorization: `Bearer ${service}` },
    });
    assert.equal(worker.status, 401);
    await worker.body?.cancel();
  } finally {
    await p.close();
  }
});

Deno.test("finding 7: malformed storage URLs answer 4xx, and the bucket is compared", async () => {
  const p = await startTestPlatform();
  try {
    const bytes = new TextEncoder().encode("not really a jpeg, but a blob");
    const digest = await crypto.subtle.digest("SHA-256", bytes);
    const sha = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join(
      "",
    );
    const path = await p.platform.deps.store.put(sha, bytes, "image/jpeg");
    const signed = new URL(await p.platform.deps.store.signedUrl(path, 300));
    const good = await fetch(signed);
    assert.equal(good.status, 200, "the genuine signed URL serves the blob");
    await good.body?.cancel();

    const malformed = new URL(signed);
    malformed.pathname = malformed.pathname.replace(/\/[^/]+$/, "/%E0%A4%A");
    const bad = await fetch(malformed);
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.code, "invalid_request");

    // Same signed message (`images` + `sha256/ab/...` = `images/sha256` + `ab/...`), other bucket.
    const moved = new URL(signed);
    moved.pathname = `/storage/v1/object/sign/images%2Fsha256/${path.replace(/^sha256\//, "")}`;
    const res = await fetch(moved);
    assert.equal(res.status, 404, "a bucket other than the store's is not served");
    assert.equal((await res.json()).error.code, "not_found");
  } finally {
    await p.close();
  }
});

Deno.test("finding 8: /health gives no queue depths; /stats gives them to service_role only", async () => {
  const p = await startTestPlatform();
  try {
    const health = await fetch(`${p.api}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { ok: true, db: "ok", queues: "ok" });
    const user = await p.userToken();
    const own = await (await fetch(`${p.api}/stats`, {
      headers: { authorization: `Bearer ${user}` },
    })).json();
    assert.equal(own.scope, "own");
    assert.equal("queues" in own, false, "a user sees no cross-tenant queue depths");
    const all = await (await fetch(`${p.api}/stats`, {
      headers: { authorization: `Bearer ${p.platform.serviceRoleKey}` },
    })).json();
    assert.equal(typeof all.queues.image_download.length, "number");
  } finally {
    await p.close();
  }
});
