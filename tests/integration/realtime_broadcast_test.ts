// Broadcast from the database (supabase/migrations/*_realtime_broadcast.sql) through the local
// Realtime stand-in, driven by the real supabase-js: private channels `task:<id>` and
// `user:<id>` are authorised by the realtime.messages policies, as on hosted Supabase.
import assert from "node:assert/strict";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { openTestDb } from "../_helpers/db.ts";
import { startRealtimeServer } from "../_helpers/realtime.ts";
import { asCaller, type Caller, signJwt } from "../../shared/auth.ts";
import { DEV_JWT_SECRET } from "../../shared/config.ts";
import { applyMigrations, installPgmqIfMissing } from "../../local/bootstrap.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const WAIT_MS = 8000;

/** Waits until `cond()` holds, checking every 20 ms, for at most WAIT_MS. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name: "realtime Broadcast: private task and user topics under the realtime.messages policies",
  // realtime-js leaves a timer behind on disconnect; upgraded sockets end after the last op.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const tdb = await openTestDb();
    const server = await startRealtimeServer(tdb.db);
    const clients: SupabaseClient[] = [];
    const alice = crypto.randomUUID();
    const bob = crypto.randomUUID();
    const sign = (claims: Parameters<typeof signJwt>[0]) => signJwt(claims, DEV_JWT_SECRET, "1h");
    const tokens = {
      anon: await sign({ role: "anon" }),
      alice: await sign({ role: "authenticated", sub: alice }),
      bob: await sign({ role: "authenticated", sub: bob }),
      service: await sign({ role: "service_role" }),
    };

    /** Joins `topic` with `token`; resolves with the join's outcome and what it receives. */
    const join = async (token: string, topic: string, isPrivate = true) => {
      const client = createClient(server.url, tokens.anon, {
        accessToken: () => Promise.resolve(token),
      });
      clients.push(client);
      await client.realtime.setAuth();
      const got: Json[] = [];
      const channel = client.channel(topic, { config: { private: isPrivate } })
        .on("broadcast", { event: "*" }, (m: Json) => got.push(m));
      const outcome = await new Promise<{ status: string; err?: Error }>((resolve) =>
        channel.subscribe((status, err) => resolve({ status, err }))
      );
      // A refused channel would rejoin with backoff: stop it.
      if (outcome.status !== "SUBSCRIBED") await client.removeChannel(channel);
      return { ...outcome, got };
    };

    const createTask = async (owner: string | null) => {
      const [row] = await tdb.db.query<{ task_id: string }>(
        "select task_id from darkroom.create_task(p_image_url => $1, p_owner => $2::uuid)",
        ["http://e.com/a.jpg", owner],
      );
      server.realtime.wake();
      return row.task_id;
    };
    const cancelTask = async (id: string) => {
      await tdb.db.query("select * from darkroom.cancel_task(p_task_id => $1::uuid)", [id]);
      server.realtime.wake();
    };
    const events = (got: Json[]) => got.map((m) => m.event);

    try {
      const aliceTask = await createTask(alice);
      const ownerless = await createTask(null);

      const aliceOnTask = await join(tokens.alice, `task:${aliceTask}`);
      const aliceOnUser = await join(tokens.alice, `user:${alice}`);
      const bobOnUser = await join(tokens.bob, `user:${bob}`);
      const anonOnOwnerless = await join(tokens.anon, `task:${ownerless}`);
      const serviceOnTask = await join(tokens.service, `task:${aliceTask}`);
      const publicOnTask = await join(tokens.alice, `task:${aliceTask}`, false);

      await t.step("joins the policies allow are SUBSCRIBED", () => {
        for (const s of [aliceOnTask, aliceOnUser, bobOnUser, anonOnOwnerless, serviceOnTask]) {
          assert.equal(s.status, "SUBSCRIBED", String(s.err));
        }
        assert.equal(publicOnTask.status, "SUBSCRIBED", "a public channel needs no policy");
      });

      await t.step("joins the policies refuse fail with Realtime's reason", async () => {
        const refused = [
          [tokens.bob, `task:${aliceTask}`],
          [tokens.bob, `user:${alice}`],
          [tokens.anon, `task:${aliceTask}`],
          [tokens.anon, `user:${alice}`],
          [tokens.alice, `task:${crypto.randomUUID()}`],
          [tokens.alice, "task:not-a-uuid"],
        ];
        for (const [token, topic] of refused) {
          const s = await join(token, topic);
          assert.equal(s.status, "CHANNEL_ERROR", topic);
          assert.match(
            String(s.err?.message),
            new RegExp(
              `Unauthorized: You do not have permissions to read from this Channel topic: ${topic}`,
            ),
          );
        }
      });

      await t.step("a user gets their own task's messages on task:<id> and user:<id>", async () => {
        await cancelTask(aliceTask);
        await until(() => aliceOnTask.got.length >= 2, "alice's task messages");
        await until(() => aliceOnUser.got.length >= 2, "alice's user messages");
        assert.deepEqual(events(aliceOnTask.got), ["task.state", "task.cancelled"]);
        assert.deepEqual(events(aliceOnUser.got), ["task.state", "task.cancelled"]);
        const [state, cancelled] = aliceOnTask.got;
        assert.equal(state.type, "broadcast");
        assert.equal(typeof state.meta.id, "string");
        const { updatedAt, id, ...summary } = state.payload;
        assert.deepEqual(summary, { taskId: aliceTask, status: "cancelled", stage: "download" });
        assert.match(updatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.equal(id, state.meta.id, "realtime.send puts the message id in the payload");
        const [row] = await tdb.db.query<Json>(
          `select id, trace_id, created_at from public.events
            where task_id = $1 and event_type = 'task.cancelled'`,
          [aliceTask],
        );
        const { id: _messageId, ...event } = cancelled.payload;
        assert.deepEqual(event, {
          eventId: row.id,
          eventType: "task.cancelled",
          taskId: aliceTask,
          traceId: row.trace_id,
          timestamp: new Date(row.created_at).getTime(),
          source: event.source,
          payload: event.payload,
        });
        assert.equal(typeof event.source, "string");
      });

      await t.step("user:<id> gets the messages of the user's new tasks", async () => {
        const before = aliceOnUser.got.length;
        const second = await createTask(alice);
        await until(() => aliceOnUser.got.length >= before + 2, "the new task's messages");
        const fresh = aliceOnUser.got.slice(before);
        assert.deepEqual(events(fresh), ["task.state", "task.created"]);
        assert.equal(fresh[0].payload.taskId, second);
        assert.equal(fresh[0].payload.status, "queued");
      });

      await t.step("anon gets an ownerless task's messages by its id", async () => {
        await cancelTask(ownerless);
        await until(() => anonOnOwnerless.got.length >= 2, "the ownerless task's messages");
        assert.deepEqual(events(anonOnOwnerless.got), ["task.state", "task.cancelled"]);
        assert.equal(anonOnOwnerless.got[0].payload.taskId, ownerless);
      });

      await t.step("no one gets another user's messages; service_role gets the topic", async () => {
        await until(() => serviceOnTask.got.length >= 2, "service_role's messages");
        await sleep(300); // a few polls
        assert.deepEqual(bobOnUser.got, [], "bob's user topic carries nothing of alice's");
        assert.deepEqual(aliceOnTask.got.filter((m) => m.payload.taskId === ownerless), []);
      });

      await t.step("a non-private join to a private topic gets nothing", () => {
        assert.deepEqual(publicOnTask.got, []);
      });
    } finally {
      for (const c of clients) await c.removeAllChannels().catch(() => {});
      await server.close();
      await tdb.close();
    }
  },
});

Deno.test("the broadcast migration applies, and tasks change, where no realtime schema exists", async () => {
  // Only the roles and auth stand-ins: no realtime schema, as on plain PostgreSQL.
  const t = await openTestDb("none");
  try {
    await t.db.exec(
      await Deno.readTextFile(new URL("../../local/sql/supabase_stand_ins.sql", import.meta.url)),
    );
    await installPgmqIfMissing(t.db);
    await applyMigrations(t.db);
    const [none] = await t.db.query<{ n: number }>(
      "select count(*)::int as n from pg_namespace where nspname = 'realtime'",
    );
    assert.equal(none.n, 0);
    const [row] = await t.db.query<{ task_id: string }>(
      "select task_id from darkroom.create_task(p_image_url => 'http://e.com/a.jpg')",
    );
    await t.db.query("select * from darkroom.cancel_task(p_task_id => $1::uuid)", [row.task_id]);
    const [task] = await t.db.query<{ status: string }>(
      "select status from public.tasks where id = $1",
      [row.task_id],
    );
    assert.equal(task.status, "cancelled");
  } finally {
    await t.close();
  }
});

Deno.test("a broadcasting change leaves realtime.topic unset for the rest of the transaction", async () => {
  const t = await openTestDb();
  try {
    const anon: Caller = { role: "anon", userId: null, claims: { role: "anon" } };
    const [row] = await asCaller(t.db, anon, async (tx) => {
      await tx.query("select * from darkroom.create_task(p_image_url => 'http://e.com/a.jpg')");
      // realtime.send SET LOCALs the topic; left set, it would name the task to the policies.
      return await tx.query<{ topic: string | null; visible: number }>(
        "select realtime.topic() as topic, (select count(*)::int from public.tasks) as visible",
      );
    });
    assert.deepEqual(row, { topic: null, visible: 0 });
    const [sent] = await t.db.query<{ n: number }>(
      "select count(*)::int as n from realtime.messages where extension = 'broadcast'",
    );
    assert.ok(sent.n >= 2, "the task's state and task.created were sent");
  } finally {
    await t.close();
  }
});
