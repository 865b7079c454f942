// The notification-worker: signed webhooks (Standard Webhooks, verified here with the
// standardwebhooks package) to a real receiver on loopback, retries with backoff and Retry-After,
// every attempt in public.deliveries, the address policy at delivery time, no redirect followed,
// GET /tasks/:id/deliveries and POST /deliveries/:id/redeliver under RLS.
import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { createApiApp } from "../../shared/api/app.ts";
import { JwtVerifier, signJwt } from "../../shared/auth.ts";
import { DEV_JWT_SECRET, loadConfig } from "../../shared/config.ts";
import type { Queryable } from "../../shared/db.ts";
import { createNotificationWorker } from "../../shared/functions/notification_worker.ts";
import { silentLogger } from "../../shared/log.ts";
import { createStore } from "../../shared/providers.ts";
import { createTask } from "../../shared/tasks.ts";
import { openTestDb } from "../_helpers/db.ts";

const secret = DEV_JWT_SECRET;
const WEBHOOK_SECRET = `whsec_${btoa("darkroom-test-webhook-secret-32by")}`;
// deno-lint-ignore no-explicit-any
type Json = any;

interface Received {
  path: string;
  verified: boolean;
  body: Json;
  headers: Record<string, string>;
  answered: number;
}

/** A receiver on loopback: /flaky fails three times (503, 500 + Retry-After: 1, 429), then 200. */
function startReceiver() {
  const received: Received[] = [];
  let flaky = 0;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const text = await req.text();
    const headers = Object.fromEntries(req.headers);
    let verified = false;
    try {
      new Webhook(WEBHOOK_SECRET).verify(text, headers);
      verified = true;
    } catch { /* recorded as unverified */ }
    const answer = (status: number, h: Record<string, string> = {}) => {
      received.push({
        path: url.pathname,
        verified,
        body: JSON.parse(text),
        headers,
        answered: status,
      });
      return new Response(null, { status, headers: h });
    };
    if (url.pathname === "/flaky") {
      flaky++;
      if (flaky === 1) return answer(503);
      if (flaky === 2) return answer(500, { "retry-after": "1" });
      if (flaky === 3) return answer(429);
      return answer(200);
    }
    if (url.pathname === "/redirect") return answer(302, { location: "/ok" });
    return answer(204);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    received,
    close: () => server.shutdown(),
  };
}

async function publish(db: Queryable, taskId: string, type: string, payload: unknown) {
  const [row] = await db.query<{ id: string }>(
    `select (darkroom.publish_event(t, $2, 'test', $3::jsonb)).id as id
       from public.tasks t where t.id = $1`,
    [taskId, type, JSON.stringify(payload)],
  );
  return row.id;
}

Deno.test({
  name: "notification-worker delivers signed webhooks, retries, records every attempt",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const tdb = await openTestDb();
    const db = tdb.db;
    const receiver = startReceiver();
    const verifier = new JwtVerifier({ secret });
    const app = createApiApp({ db, verifier, log: silentLogger });
    const worker = (env: Record<string, string>, resolve?: (h: string) => Promise<string[]>) => {
      const config = loadConfig({ LOG_LEVEL: "error", ...env });
      return createNotificationWorker({
        config,
        db,
        verifier,
        log: silentLogger,
        store: createStore(config, { publicBaseUrl: "http://127.0.0.1" }),
        resolve,
        // Tests wait only as long as the receiver asks (Retry-After), not the 2, 4, 8 s backoff.
        webhookRetryDelaySeconds: (_attempt, retryAfter) => retryAfter ?? 0,
      });
    };
    const notifier = worker({ WEBHOOK_SECRET, ALLOW_PRIVATE_NETWORK: "true" });
    const service = await signJwt({ role: "service_role" }, secret);
    /** Runs `handler` until the queue stays empty (waiting out hidden messages up to 10 s). */
    const drain = async (handler = notifier) => {
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const res = await handler(
          new Request("http://x/", {
            method: "POST",
            headers: { authorization: `Bearer ${service}` },
          }),
        );
        const body = await res.json();
        assert.equal(res.status, 200, JSON.stringify(body));
        if (body.read > 0) continue;
        const [{ n }] = await db.query<{ n: number }>(
          "select count(*)::integer as n from pgmq.q_evt_notification",
        );
        if (n === 0) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error("the notification queue did not drain");
    };
    const alice = crypto.randomUUID();
    const bob = crypto.randomUUID();
    const tokens = {
      alice: await signJwt({ role: "authenticated", sub: alice }, secret),
      bob: await signJwt({ role: "authenticated", sub: bob }, secret),
      anon: await signJwt({ role: "anon" }, secret),
    };
    const call = async (method: string, path: string, token = tokens.alice) => {
      const res = await app.request(`/api${path}`, {
        method,
        headers: { authorization: `Bearer ${token}` },
      });
      return { status: res.status, json: await res.json() as Json };
    };
    const deliveriesOf = (taskId: string) =>
      db.query<Json>(
        `select attempt, status, response_status, error, duration_ms,
                extract(epoch from (next_attempt_at - created_at)) as wait
           from public.deliveries where task_id = $1 order by created_at, attempt`,
        [taskId],
      );

    try {
      const flakyTask = await createTask(db, {
        imageUrl: "https://example.com/a.jpg",
        callbackUrl: `${receiver.url}/flaky`,
      }, alice);
      const [before] = await db.query("select * from public.tasks where id = $1", [
        flakyTask.taskId,
      ]);
      let eventId = "";

      await t.step(
        "a receiver failing three times gets exactly one accepted delivery",
        async () => {
          eventId = await publish(db, flakyTask.taskId, "task.completed", {
            imageId: crypto.randomUUID(),
            status: "completed",
            durationMs: 5,
          });
          await drain();
          const accepted = receiver.received.filter((r) => r.answered === 200);
          assert.equal(accepted.length, 1, "one accepted delivery");
          assert.equal(receiver.received.length, 4);
          assert.ok(receiver.received.every((r) => r.verified), "every request verifies");
          assert.ok(receiver.received.every((r) => r.headers["webhook-id"] === eventId));
          assert.match(accepted[0].headers["webhook-signature"], /^v1,[A-Za-z0-9+/]+=*$/);
          assert.equal(accepted[0].body.eventId, eventId);
          assert.equal(accepted[0].body.eventType, "task.completed");
          assert.equal(accepted[0].body.taskId, flakyTask.taskId);
          assert.equal(accepted[0].body.traceId, flakyTask.traceId);
        },
      );

      await t.step(
        "every attempt is a row: status, attempt, code, duration, next attempt",
        async () => {
          const rows = await deliveriesOf(flakyTask.taskId);
          assert.deepEqual(rows.map((r: Json) => [r.attempt, r.status, r.response_status]), [
            [1, "retrying", 503],
            [2, "retrying", 500],
            [3, "retrying", 429],
            [4, "delivered", 200],
          ]);
          assert.ok(rows.every((r: Json) => typeof r.duration_ms === "number"));
          assert.ok(Number(rows[1].wait) >= 0.9, `Retry-After honoured: ${rows[1].wait}`);
          assert.equal(rows[3].wait, null, "no next attempt once delivered");
          assert.match(rows[0].error, /status 503/);
        },
      );

      await t.step("a duplicate of a delivered event is not sent again", async () => {
        const [m] = await db.query<{ m: Json }>(
          "select darkroom.subscriber_message(e) as m from public.events e where e.id = $1",
          [eventId],
        );
        await db.query("select pgmq.send('evt_notification', $1::jsonb)", [JSON.stringify(m.m)]);
        await drain();
        assert.equal(receiver.received.length, 4);
      });

      await t.step("the task row was never touched", async () => {
        const [after] = await db.query("select * from public.tasks where id = $1", [
          flakyTask.taskId,
        ]);
        assert.deepEqual(after, before);
      });

      await t.step("a metadata address is refused at delivery time and recorded", async () => {
        const task = await createTask(db, {
          imageUrl: "https://example.com/a.jpg",
          callbackUrl: "http://hooks.darkroom.test/x",
        }, alice);
        // The name resolved to a public address when the task was made; now it names the
        // cloud metadata endpoint.
        const rebinding = worker(
          { WEBHOOK_SECRET, ALLOW_PRIVATE_NETWORK: "true" },
          () => Promise.resolve(["169.254.169.254"]),
        );
        await publish(db, task.taskId, "task.failed", {
          stage: "download",
          code: "http_status",
          message: "Status 404",
          attempts: 1,
        });
        const seen = receiver.received.length;
        await drain(rebinding);
        assert.equal(receiver.received.length, seen, "nothing was sent");
        const rows = await deliveriesOf(task.taskId);
        assert.equal(rows.length, 1, "refused once, not retried");
        assert.equal(rows[0].status, "failed");
        assert.match(rows[0].error, /blocked address \(cloud metadata\)/);
      });

      await t.step("with ALLOW_PRIVATE_NETWORK off, a private address is refused", async () => {
        const task = await createTask(db, {
          imageUrl: "https://example.com/a.jpg",
          callbackUrl: `${receiver.url}/ok`,
        }, alice);
        await publish(db, task.taskId, "task.cancelled", { stage: null });
        const seen = receiver.received.length;
        await drain(worker({ WEBHOOK_SECRET }));
        assert.equal(receiver.received.length, seen);
        const [row] = await deliveriesOf(task.taskId);
        assert.equal(row.status, "failed");
        assert.match(row.error, /blocked address \(loopback\)/);
      });

      await t.step("a redirect is not followed", async () => {
        const task = await createTask(db, {
          imageUrl: "https://example.com/a.jpg",
          callbackUrl: `${receiver.url}/redirect`,
        }, alice);
        const seen = receiver.received.length;
        await publish(db, task.taskId, "task.cancelled", { stage: null });
        await drain();
        const hits = receiver.received.slice(seen).map((r) => r.path);
        assert.ok(hits.length >= 1 && hits.every((p) => p === "/redirect"), hits.join());
        const rows = await deliveriesOf(task.taskId);
        assert.equal(rows.length, 5, "every try up to MAX_ATTEMPTS");
        assert.equal(rows.at(-1).status, "failed");
        assert.match(rows[0].error, /status 302 \(redirects are not followed\)/);
      });

      let unsigned = "";
      await t.step("without WEBHOOK_SECRET a delivery fails with that reason", async () => {
        const task = await createTask(db, {
          imageUrl: "https://example.com/a.jpg",
          callbackUrl: `${receiver.url}/ok`,
        }, alice);
        unsigned = task.taskId;
        await publish(db, task.taskId, "task.cancelled", { stage: null });
        const seen = receiver.received.length;
        await drain(worker({ ALLOW_PRIVATE_NETWORK: "true" }));
        assert.equal(receiver.received.length, seen);
        const [row] = await deliveriesOf(task.taskId);
        assert.equal(row.status, "failed");
        assert.match(row.error, /WEBHOOK_SECRET is not set/);
      });

      await t.step("GET /tasks/:id/deliveries: the owner sees every attempt", async () => {
        const r = await call("GET", `/tasks/${flakyTask.taskId}/deliveries`);
        assert.equal(r.status, 200);
        assert.deepEqual(r.json.map((d: Json) => d.status), [
          "retrying",
          "retrying",
          "retrying",
          "delivered",
        ]);
        assert.equal(r.json[0].eventId, eventId);
        assert.equal(typeof r.json[0].nextAttemptAt, "string");
        assert.equal(r.json[3].nextAttemptAt, null);
      });

      await t.step("cross-tenant reads and redeliveries find nothing", async () => {
        const [d] = await db.query<{ id: string }>(
          "select id from public.deliveries where task_id = $1 limit 1",
          [flakyTask.taskId],
        );
        assert.equal(
          (await call("GET", `/tasks/${flakyTask.taskId}/deliveries`, tokens.bob)).status,
          404,
        );
        assert.equal(
          (await call("GET", `/tasks/${flakyTask.taskId}/deliveries`, tokens.anon)).status,
          404,
        );
        assert.equal((await call("POST", `/deliveries/${d.id}/redeliver`, tokens.bob)).status, 404);
        assert.equal(
          (await call("POST", `/deliveries/${d.id}/redeliver`, tokens.anon)).status,
          404,
        );
        const [{ n }] = await db.query<{ n: number }>(
          "select count(*)::integer as n from pgmq.q_evt_notification",
        );
        assert.equal(n, 0, "nothing was queued");
      });

      await t.step("POST /deliveries/:id/redeliver sends the event again, signed", async () => {
        const [d] = await db.query<{ id: string }>(
          "select id from public.deliveries where task_id = $1",
          [unsigned],
        );
        const r = await call("POST", `/deliveries/${d.id}/redeliver`);
        assert.equal(r.status, 202, JSON.stringify(r.json));
        assert.equal(r.json.status, "queued");
        const seen = receiver.received.length;
        await drain();
        const got = receiver.received.slice(seen);
        assert.equal(got.length, 1);
        assert.ok(got[0].verified);
        assert.equal(got[0].headers["webhook-id"], r.json.eventId);
        const rows = await deliveriesOf(unsigned);
        assert.deepEqual(rows.map((x: Json) => x.status), ["failed", "delivered"]);
      });
    } finally {
      await receiver.close();
      await tdb.close();
    }
  },
});
