// Webhooks through the running local platform: real tasks with a callbackUrl on a loopback
// receiver that verifies every delivery with the standardwebhooks package and WEBHOOK_SECRET;
// a receiver failing three times gets exactly one accepted delivery per event (after the
// worker's real 2, 4, 8 s backoff); GET /tasks/:id/deliveries shows every attempt; redeliver
// sends the event again; events published while the platform's workers are stopped are each
// delivered exactly once after a restart; a callbackUrl whose name resolves to a private
// address at delivery time is refused and recorded. Runs on PGlite, or PostgreSQL with
// DATABASE_URL.
import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { startFixtureServer } from "../_helpers/fixtures.ts";
import { startTestPlatform, type TestPlatform, waitForTask } from "../_helpers/platform.ts";
import { blockedAddressReason, systemResolver } from "../../shared/net/address_policy.ts";

const WEBHOOK_SECRET = `whsec_${btoa("darkroom-e2e-webhook-secret-32byt")}`;
// deno-lint-ignore no-explicit-any
type Json = any;

interface Received {
  path: string;
  webhookId: string;
  verified: boolean;
  body: Json;
  answered: number;
}

/**
 * A receiver on loopback that verifies each request with the secret. /flaky answers 503 to the
 * first three tries of each webhook-id, then 200; anything else answers 204.
 */
function startReceiver(hostname = "127.0.0.1") {
  const received: Received[] = [];
  const tries = new Map<string, number>();
  const server = Deno.serve({ port: 0, hostname, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const text = await req.text();
    const headers = Object.fromEntries(req.headers);
    let verified = false;
    try {
      new Webhook(WEBHOOK_SECRET).verify(text, headers);
      verified = true;
    } catch { /* recorded as unverified */ }
    const webhookId = headers["webhook-id"] ?? "";
    const n = (tries.get(webhookId) ?? 0) + 1;
    tries.set(webhookId, n);
    const status = path === "/flaky" && n <= 3 ? 503 : path === "/flaky" ? 200 : 204;
    let body: Json = null;
    try {
      body = JSON.parse(text);
    } catch { /* not a webhook (a download, were the guard missing) */ }
    received.push({ path, webhookId, verified, body, answered: status });
    return new Response(null, { status });
  });
  return {
    port: server.addr.port,
    url: `http://${hostname}:${server.addr.port}`,
    received,
    accepted: () => received.filter((r) => r.answered < 300),
    close: () => server.shutdown(),
  };
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 60_000,
) {
  const deadline = Date.now() + ms;
  while (true) {
    const got = await probe();
    if (got !== undefined && got !== false) return got;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function client(p: TestPlatform, token: string) {
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  return {
    async submit(imageUrl: string, callbackUrl: string): Promise<string> {
      const res = await fetch(`${p.api}/tasks`, {
        method: "POST",
        headers,
        body: JSON.stringify({ imageUrl, callbackUrl }),
      });
      assert.equal(res.status, 202, await res.clone().text());
      return (await res.json()).taskId;
    },
    async call(method: string, path: string): Promise<{ status: number; json: Json }> {
      const res = await fetch(`${p.api}${path}`, { method, headers });
      return { status: res.status, json: await res.json() };
    },
  };
}

/** Notification messages still queued (visible or hidden). */
async function notificationBacklog(p: TestPlatform): Promise<number> {
  const [{ n }] = await p.platform.db.query<{ n: number }>(
    "select count(*)::integer as n from pgmq.q_evt_notification",
  );
  return n;
}

Deno.test({
  name: "webhooks (local platform): verified, retried to one acceptance, recorded, redelivered",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const fixtures = startFixtureServer();
    const receiver = startReceiver();
    const p = await startTestPlatform({ WEBHOOK_SECRET });
    const token = await p.userToken();
    const api = client(p, token);
    const image = `${fixtures.url}/images/canon_powershot_s40.jpg`;
    try {
      await t.step("a completed task's callbackUrl gets one verified task.completed", async () => {
        const taskId = await api.submit(image, `${receiver.url}/ok`);
        const task = await waitForTask(p.api, token, taskId);
        assert.equal(task.status, "completed");
        const got = await until("the webhook", () => {
          const r = receiver.received.filter((r) => r.body?.taskId === taskId);
          return r.length > 0 ? r : undefined;
        });
        await until("an empty notification queue", async () => await notificationBacklog(p) === 0);
        assert.equal(receiver.received.filter((r) => r.body?.taskId === taskId).length, 1);
        assert.ok(got[0].verified, "verified by standardwebhooks with WEBHOOK_SECRET");
        assert.equal(got[0].body.eventType, "task.completed");
        assert.equal(got[0].webhookId, got[0].body.eventId, "webhook-id is the eventId");
        const events = await api.call("GET", `/tasks/${taskId}/events`);
        const completed = events.json.find((e: Json) => e.eventType === "task.completed");
        assert.deepEqual(got[0].body, completed, "the body is the INEvent");
      });

      let flakyTasks: string[] = [];
      await t.step(
        "a receiver failing three times gets exactly one accepted delivery per event",
        async () => {
          flakyTasks = [
            await api.submit(image, `${receiver.url}/flaky`),
            await api.submit(image, `${receiver.url}/flaky`),
          ];
          for (const id of flakyTasks) {
            assert.equal((await waitForTask(p.api, token, id)).status, "completed");
          }
          // The worker's own backoff: 2, 4 and 8 s (+ up to 20 % jitter) between the four tries.
          await until("both events accepted", () => {
            const ok = receiver.accepted().filter((r) => flakyTasks.includes(r.body?.taskId));
            return ok.length >= 2 ? ok : undefined;
          }, 90_000);
          await until(
            "an empty notification queue",
            async () => await notificationBacklog(p) === 0,
          );
          for (const id of flakyTasks) {
            const mine = receiver.received.filter((r) => r.body?.taskId === id);
            assert.deepEqual(mine.map((r) => r.answered), [503, 503, 503, 200], id);
            assert.ok(mine.every((r) => r.verified), "every try is signed");
            assert.equal(
              new Set(mine.map((r) => r.webhookId)).size,
              1,
              "one event, one webhook-id",
            );
            assert.equal(mine.filter((r) => r.answered < 300).length, 1, "accepted exactly once");
          }
        },
      );

      await t.step("GET /tasks/:id/deliveries shows every attempt, to the owner only", async () => {
        const r = await api.call("GET", `/tasks/${flakyTasks[0]}/deliveries`);
        assert.equal(r.status, 200, JSON.stringify(r.json));
        assert.deepEqual(r.json.map((d: Json) => [d.attempt, d.status, d.responseStatus]), [
          [1, "retrying", 503],
          [2, "retrying", 503],
          [3, "retrying", 503],
          [4, "delivered", 200],
        ]);
        assert.ok(r.json.slice(0, 3).every((d: Json) => typeof d.nextAttemptAt === "string"));
        assert.equal(r.json[3].nextAttemptAt, null);
        assert.ok(r.json.every((d: Json) => d.eventType === "task.completed"));
        assert.ok(r.json.every((d: Json) => d.url === `${receiver.url}/flaky`));
        const other = client(p, await p.userToken());
        assert.equal((await other.call("GET", `/tasks/${flakyTasks[0]}/deliveries`)).status, 404);
      });

      await t.step("POST /deliveries/:id/redeliver sends the event again, signed", async () => {
        const list = await api.call("GET", `/tasks/${flakyTasks[0]}/deliveries`);
        const first = list.json[0];
        const other = client(p, await p.userToken());
        assert.equal(
          (await other.call("POST", `/deliveries/${first.deliveryId}/redeliver`)).status,
          404,
        );
        const seen = receiver.received.length;
        const r = await api.call("POST", `/deliveries/${first.deliveryId}/redeliver`);
        assert.equal(r.status, 202, JSON.stringify(r.json));
        assert.equal(r.json.eventId, first.eventId);
        const again = await until("the redelivery", () => {
          const got = receiver.received.slice(seen);
          return got.length > 0 ? got : undefined;
        });
        await until("an empty notification queue", async () => await notificationBacklog(p) === 0);
        assert.equal(receiver.received.length - seen, 1);
        assert.equal(again[0].webhookId, first.eventId);
        assert.ok(again[0].verified);
        const after = await api.call("GET", `/tasks/${flakyTasks[0]}/deliveries`);
        assert.deepEqual(after.json.map((d: Json) => d.status), [
          "retrying",
          "retrying",
          "retrying",
          "delivered",
          "delivered",
        ]);
      });

      await t.step(
        "100 events published while the workers are stopped arrive each exactly once after a restart",
        async () => {
          const taskId = await api.submit(image, `${receiver.url}/ok`);
          assert.equal((await waitForTask(p.api, token, taskId)).status, "completed");
          await until(
            "the first webhook",
            () => receiver.received.some((r) => r.body?.taskId === taskId) || undefined,
          );
          await until(
            "an empty notification queue",
            async () => await notificationBacklog(p) === 0,
          );
          await p.platform.scheduler.stop();
          const published: string[] = [];
          for (let i = 0; i < 100; i++) {
            const [row] = await p.platform.db.query<{ id: string }>(
              `select (darkroom.publish_event(t, 'task.completed', 'e2e-test',
                 jsonb_build_object('i', $2::integer))).id as id
                 from public.tasks t where t.id = $1`,
              [taskId, i],
            );
            published.push(row.id);
          }
          assert.equal(await notificationBacklog(p), 100, "queued while nobody consumes");
          assert.ok(!receiver.received.some((r) => published.includes(r.webhookId)));
          await p.restart();
          await until(
            "100 webhooks",
            () =>
              published.every((id) => receiver.received.some((r) => r.webhookId === id)) ||
              undefined,
            120_000,
          );
          await until(
            "an empty notification queue",
            async () => await notificationBacklog(p) === 0,
          );
          const got = receiver.received.filter((r) => published.includes(r.webhookId));
          assert.equal(got.length, 100, "each exactly once");
          assert.equal(new Set(got.map((r) => r.webhookId)).size, 100);
          assert.ok(got.every((r) => r.verified));
          const [{ n }] = await p.platform.db.query<{ n: number }>(
            `select count(*)::integer as n from public.deliveries
              where task_id = $1 and status = 'delivered'`,
            [taskId],
          );
          assert.equal(n, 101, "the first task.completed and the 100");
        },
      );
    } finally {
      await p.close();
      await receiver.close();
      await fixtures.close();
    }
  },
});

Deno.test({
  name:
    "webhooks (local platform): a callbackUrl resolving to a private address at delivery time is refused and recorded",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // The machine's own hostname: a name (so POST /tasks, which resolves nothing, accepts it)
    // that the system resolver (/etc/hosts) turns into this machine's address.
    const host = Deno.hostname().toLowerCase();
    const addresses = await systemResolver(host);
    assert.ok(
      addresses.length > 0 &&
        addresses.every((a) => blockedAddressReason(a, { allowPrivateNetwork: false })),
      `precondition: ${host} resolves to private addresses only (got ${addresses})`,
    );
    // Listening where the name leads: were the guard missing, the delivery would arrive.
    const receiver = startReceiver(addresses[0].includes(":") ? "::" : "0.0.0.0");
    const p = await startTestPlatform({ WEBHOOK_SECRET, ALLOW_PRIVATE_NETWORK: "false" });
    const token = await p.userToken();
    const api = client(p, token);
    try {
      const callbackUrl = `http://${host}:${receiver.port}/hook`;
      // The download is refused too (same policy): the task fails, and task.failed is announced.
      const taskId = await api.submit(`http://${host}:${receiver.port}/image.jpg`, callbackUrl);
      const task = await waitForTask(p.api, token, taskId);
      assert.equal(task.status, "failed");
      const deliveries = await until("the refused delivery", async () => {
        const r = await api.call("GET", `/tasks/${taskId}/deliveries`);
        return r.json.length > 0 && r.json.every((d: Json) => d.status !== "retrying")
          ? r.json
          : undefined;
      });
      assert.equal(deliveries.length, 1, JSON.stringify(deliveries));
      const [d] = deliveries;
      assert.equal(d.status, "failed");
      assert.equal(d.eventType, "task.failed");
      assert.equal(d.url, callbackUrl);
      assert.equal(d.responseStatus, null);
      assert.match(d.error, /Cannot deliver webhook: .* resolves to a blocked address/);
      assert.equal(receiver.received.length, 0, "nothing reached the private address");
    } finally {
      await p.close();
      await receiver.close();
    }
  },
});
