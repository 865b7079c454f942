// The new API keys end to end. On the local platform, over HTTP: a publishable key acts as anon
// (creates and reads an ownerless task, is refused by the workers) and a secret key as service_role
// (runs a worker, sees every row of /stats). And a deployment whose legacy keys are disabled: the
// edge functions built from nothing but SUPABASE_URL, SUPABASE_DB_URL, SUPABASE_PUBLISHABLE_KEYS,
// SUPABASE_SECRET_KEYS and SUPABASE_JWKS start, tell each kind of caller apart and run a task
// through every stage with Storage called with the secret key.
import assert from "node:assert/strict";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { signJwt } from "../../shared/auth.ts";
import { DEV_JWT_SECRET } from "../../shared/config.ts";
import { buildEdgeDeps } from "../../shared/edge.ts";
import { edgeAiWorker } from "../../shared/functions/ai_worker.ts";
import { edgeApiHandler } from "../../shared/functions/api.ts";
import { edgeDownloadWorker } from "../../shared/functions/download_worker.ts";
import { edgeMetadataWorker } from "../../shared/functions/metadata_worker.ts";
import { platformApiKeys } from "../../local/keys.ts";
import { openTestDb } from "../_helpers/db.ts";
import { startFakeStorage } from "../_helpers/fake_storage.ts";
import { startFixtureServer } from "../_helpers/fixtures.ts";
import { startTestPlatform } from "../_helpers/platform.ts";

const UNREACHABLE_IMAGE = "http://127.0.0.1:9/none.jpg";

type Headers = Record<string, string>;
const bearer = (key: string): Headers => ({ authorization: `Bearer ${key}` });
const both = (key: string): Headers => ({ authorization: `Bearer ${key}`, apikey: key });
const randomKey = (prefix: string) =>
  prefix + btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(24))))
    .replace(/[+/=]/g, "x");

async function expectStatus(res: Response, status: number, what: string) {
  const text = await res.text();
  assert.equal(res.status, status, `${what}: ${text}`);
  return text ? JSON.parse(text) : null;
}

Deno.test({
  name: "API keys on the local platform (HTTP)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const p = await startTestPlatform();
    const { publishableKey, secretKey, anonKey, serviceRoleKey } = p.platform;
    const fn = `${p.platform.url}/functions/v1`;
    const call = (path: string, headers: Headers, body?: unknown) =>
      fetch(`${fn}${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: body === undefined ? headers : { ...headers, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    try {
      await t.step(
        "the platform's keys have the hosted formats, derived from the JWT secret",
        async () => {
          assert.match(publishableKey, /^sb_publishable_[A-Za-z0-9_-]{32}$/);
          assert.match(secretKey, /^sb_secret_[A-Za-z0-9_-]{32}$/);
          assert.deepEqual(await platformApiKeys(p.config.JWT_SECRET), {
            publishableKey,
            secretKey,
          });
          assert.notDeepEqual(await platformApiKeys("another-secret-of-at-least-32-characters!"), {
            publishableKey,
            secretKey,
          });
        },
      );

      await t.step(
        "a publishable-key caller creates an ownerless task and reads it by id",
        async () => {
          for (const headers of [{ apikey: publishableKey }, bearer(publishableKey)]) {
            const created = await expectStatus(
              await call("/api/tasks", headers, { imageUrl: UNREACHABLE_IMAGE }),
              202,
              "POST /tasks",
            );
            const task = await expectStatus(
              await call(`/api/tasks/${created.taskId}`, headers),
              200,
              "GET /tasks/:id",
            );
            assert.equal(task.taskId, created.taskId);
            const [row] = await p.platform.db.query<{ owner: string | null }>(
              "select owner from public.tasks where id = $1",
              [created.taskId],
            );
            assert.equal(row.owner, null, "a publishable-key task belongs to nobody");
            // Like any ownerless task, the legacy anon key reads it by id too.
            await expectStatus(
              await call(`/api/tasks/${created.taskId}`, bearer(anonKey)),
              200,
              "anon",
            );
          }
          const stats = await expectStatus(
            await call("/api/stats", { apikey: publishableKey }),
            200,
            "stats",
          );
          assert.equal(stats.scope, "own");
          // The anon key carries no identity, so no Idempotency-Key either.
          const res = await fetch(`${fn}/api/tasks`, {
            method: "POST",
            headers: {
              apikey: publishableKey,
              "content-type": "application/json",
              "idempotency-key": "k",
            },
            body: JSON.stringify({ imageUrl: UNREACHABLE_IMAGE }),
          });
          assert.equal(
            (await expectStatus(res, 400, "idempotency")).error.code,
            "idempotency_key_requires_user",
          );
        },
      );

      await t.step("a publishable-key caller cannot call a worker (403)", async () => {
        for (const worker of ["download-worker", "metadata-worker", "ai-worker"]) {
          for (const headers of [both(publishableKey), { apikey: publishableKey }]) {
            const body = await expectStatus(await call(`/${worker}`, headers, {}), 403, worker);
            assert.equal(body.error.code, "forbidden");
          }
        }
      });

      await t.step(
        "a secret-key caller runs a worker, in either header or both, and sees all of /stats",
        async () => {
          for (const headers of [both(secretKey), { apikey: secretKey }, bearer(secretKey)]) {
            const summary = await expectStatus(
              await call("/download-worker", headers, {}),
              200,
              "worker",
            );
            assert.equal(typeof summary.read, "number");
          }
          const stats = await expectStatus(
            await call("/api/stats", bearer(secretKey)),
            200,
            "stats",
          );
          assert.equal(stats.scope, "all");
        },
      );

      await t.step("unknown sb_ keys get 401 from the api and the workers", async () => {
        const wrong = [
          publishableKey.slice(0, -1) + (publishableKey.endsWith("A") ? "B" : "A"),
          secretKey + "x",
          randomKey("sb_secret_"),
          randomKey("sb_publishable_"),
        ];
        for (const key of wrong) {
          for (const headers of [{ apikey: key }, bearer(key), both(key)]) {
            const api = await expectStatus(await call("/api/stats", headers), 401, `api ${key}`);
            assert.equal(api.error.code, "unauthorized");
            await expectStatus(await call("/ai-worker", headers, {}), 401, `worker ${key}`);
          }
        }
        // A right JWT does not excuse a wrong key beside it.
        await expectStatus(
          await call("/api/stats", { ...bearer(await p.userToken()), apikey: secretKey + "x" }),
          401,
          "user JWT with a wrong apikey",
        );
      });

      await t.step(
        "the legacy JWT keys still work, and a JWT decides next to a secret apikey",
        async () => {
          await expectStatus(
            await call("/download-worker", both(serviceRoleKey), {}),
            200,
            "legacy",
          );
          await expectStatus(await call("/download-worker", bearer(anonKey), {}), 403, "anon JWT");
          await expectStatus(
            await call("/download-worker", { ...bearer(anonKey), apikey: secretKey }, {}),
            403,
            "anon JWT beside the secret apikey",
          );
          const stats = await expectStatus(
            await call("/api/stats", { ...bearer(await p.userToken()), apikey: secretKey }),
            200,
            "user JWT beside the secret apikey",
          );
          assert.equal(stats.scope, "own");
        },
      );
    } finally {
      await p.close();
    }
  },
});

Deno.test({
  name: "buildEdgeDeps() starts with only the new keys and verifies each kind of caller",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const jwk = { ...await exportJWK(publicKey), kid: "signing-1", alg: "ES256", use: "sig" };
    const publishable = randomKey("sb_publishable_");
    const secret = randomKey("sb_secret_");
    const storage = await startFakeStorage({ secretKey: secret });
    const fixtures = startFixtureServer();
    const testDb = await openTestDb("all");
    const env: Record<string, string> = {
      SUPABASE_URL: storage.url,
      // PGlite has no connection string; there the test database stands in for this one below.
      SUPABASE_DB_URL: testDb.url ?? "postgres://postgres@127.0.0.1:1/unused",
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: publishable }),
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: secret }),
      SUPABASE_JWKS: JSON.stringify({ keys: [jwk] }),
      // Not keys: the download comes from the fixture server on loopback, and the logs stay quiet.
      ALLOW_PRIVATE_NETWORK: "true",
      LOG_LEVEL: "error",
    };
    const built = buildEdgeDeps(env);
    let base = built;
    if (!testDb.url) {
      await built.db.close();
      base = { ...built, db: testDb.db };
    }
    const userJwt = async (sub: string) =>
      await new SignJWT({ role: "authenticated", sub })
        .setProtectedHeader({ alg: "ES256", kid: "signing-1", typ: "JWT" })
        .setIssuedAt()
        .setExpirationTime("1h")
        .sign(privateKey);
    try {
      const api = edgeApiHandler(base);
      const workers = {
        download: edgeDownloadWorker(base),
        metadata: edgeMetadataWorker(base),
        ai: edgeAiWorker(base),
      };
      const callApi = (path: string, headers: Headers, body?: unknown) =>
        api(
          new Request(`http://edge/api${path}`, {
            method: body === undefined ? "GET" : "POST",
            headers: body === undefined
              ? headers
              : { ...headers, "content-type": "application/json" },
            body: body === undefined ? undefined : JSON.stringify(body),
          }),
        );
      const callWorker = (name: keyof typeof workers, headers: Headers) =>
        workers[name](new Request(`http://edge/${name}-worker`, { method: "POST", headers }));

      await t.step(
        "the configuration needs no legacy key: Storage is called with the secret key",
        () => {
          assert.equal(base.config.STORAGE_BACKEND, "supabase");
          assert.equal(base.config.storageKey, secret);
          assert.equal(base.store.backend, "supabase");
        },
      );

      await t.step("the api tells each kind of caller apart", async () => {
        const sub = crypto.randomUUID();
        const user = await userJwt(sub);
        const own = await expectStatus(await callApi("/stats", bearer(user)), 200, "user");
        assert.equal(own.scope, "own");
        const all = await expectStatus(await callApi("/stats", { apikey: secret }), 200, "secret");
        assert.equal(all.scope, "all");
        const created = await expectStatus(
          await callApi("/tasks", { apikey: publishable }, { imageUrl: UNREACHABLE_IMAGE }),
          202,
          "publishable POST /tasks",
        );
        await expectStatus(
          await callApi(`/tasks/${created.taskId}`, bearer(publishable)),
          200,
          "publishable GET /tasks/:id",
        );
        for (
          const [headers, what] of [
            [bearer(await signJwt({ role: "service_role" }, DEV_JWT_SECRET)), "an HS256 JWT"],
            [{ apikey: randomKey("sb_secret_") }, "an unknown secret key"],
            [bearer(randomKey("sb_publishable_")), "an unknown publishable key"],
            [{}, "no credentials"],
          ] as const
        ) {
          await expectStatus(await callApi("/stats", headers), 401, what);
        }
      });

      await t.step(
        "the workers answer the secret key only, and run a task through every stage",
        async () => {
          const sub = crypto.randomUUID();
          const user = await userJwt(sub);
          await expectStatus(await callWorker("download", both(publishable)), 403, "publishable");
          await expectStatus(await callWorker("download", bearer(user)), 403, "user");
          await expectStatus(await callWorker("download", { apikey: secret + "x" }), 401, "wrong");
          const created = await expectStatus(
            await callApi("/tasks", bearer(user), {
              imageUrl: `${fixtures.url}/images/nikon_gps_1.jpg`,
            }),
            202,
            "user POST /tasks",
          );
          // As pg_net calls them: the worker key in both headers.
          for (const name of ["download", "metadata", "ai"] as const) {
            let advanced = 0;
            for (let i = 0; i < 20 && advanced === 0; i++) {
              const summary = await expectStatus(await callWorker(name, both(secret)), 200, name);
              advanced = summary.advanced + summary.completed;
            }
            assert.ok(advanced > 0, `${name} worker moved the task on`);
          }
          const task = await expectStatus(
            await callApi(`/tasks/${created.taskId}`, bearer(user)),
            200,
            "the user's task",
          );
          assert.equal(task.status, "completed", JSON.stringify(task.error));
          assert.ok(
            storage.buckets.get("images")!.objects.size > 0,
            "the original went to Storage with the secret key",
          );
        },
      );
    } finally {
      await base.db.close().catch(() => {});
      await testDb.close();
      await fixtures.close();
      await storage.close();
    }
  },
});
