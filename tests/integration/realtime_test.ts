// The local Realtime stand-in (local/realtime) driven by the real supabase-js client over loopback:
// postgres_changes of tasks and events reach a subscriber only when RLS lets their JWT see the row.
import assert from "node:assert/strict";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { ENGINE, openTestDb } from "../_helpers/db.ts";
import { startRealtimeServer } from "../_helpers/realtime.ts";
import { asCaller, JwtVerifier, signJwt } from "../../shared/auth.ts";
import { DEV_JWT_SECRET } from "../../shared/config.ts";
import type { Column } from "../../local/realtime/catalog.ts";
import { matchesFilter, parseFilter } from "../../local/realtime/filter.ts";

// deno-lint-ignore no-explicit-any
type Json = any;
type Binding = { event: string; schema: string; table?: string; filter?: string };

const secret = DEV_JWT_SECRET;
const WAIT_MS = 8000;

/** Resolves `p`, or rejects after `ms` naming `what`. */
async function within<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `cond()` holds, checking every 20 ms, for at most WAIT_MS. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name: "realtime postgres_changes through supabase-js",
  // realtime-js leaves a 10 s timer behind on disconnect (SocketAdapter.disconnect races the
  // close against it and never clears it), and upgraded sockets end after the test's last op.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const tdb = await openTestDb();
    const server = await startRealtimeServer(tdb.db);
    const clients: SupabaseClient[] = [];
    const alice = crypto.randomUUID();
    const bob = crypto.randomUUID();
    const tokens = {
      anon: await signJwt({ role: "anon" }, secret, "1h"),
      alice: await signJwt({ role: "authenticated", sub: alice }, secret, "1h"),
      bob: await signJwt({ role: "authenticated", sub: bob }, secret, "1h"),
      service: await signJwt({ role: "service_role" }, secret, "1h"),
      forged: await signJwt({ role: "service_role" }, "x".repeat(40), "1h"),
      expired: await signJwt({ role: "authenticated", sub: alice }, secret, now() - 60),
    };

    /**
     * A client whose Realtime access token is `auth.token` (the apikey is the anon key): the
     * accessToken callback is realtime-js's source of truth, asked again on every heartbeat.
     */
    const clientFor = async (auth: { token: string }, vsn?: string) => {
      const client = createClient(server.url, tokens.anon, {
        accessToken: () => Promise.resolve(auth.token),
        realtime: vsn ? { vsn } : {},
      });
      clients.push(client);
      // Resolve the token before joining, so the join carries it.
      await client.realtime.setAuth();
      return client;
    };

    /** Subscribes one channel with `bindings`; collects what each binding and `system` get. */
    const subscribe = async (token: string, bindings: Binding[], vsn?: string) => {
      const auth = { token };
      const client = await clientFor(auth, vsn);
      const got: Json[][] = bindings.map(() => []);
      const system: Json[] = [];
      const statuses: string[] = [];
      let channel = client.channel(`test-${crypto.randomUUID()}`);
      bindings.forEach((b, i) => {
        channel = channel.on("postgres_changes", b as Json, (p: Json) => got[i].push(p));
      });
      channel.on("system", {}, (p: Json) => system.push(p));
      const first = await within(
        new Promise<{ status: string; err?: Error }>((resolve) =>
          channel.subscribe((status, err) => {
            statuses.push(status);
            resolve({ status, err });
          })
        ),
        "subscribe",
      );
      return { client, auth, channel, got, system, statuses, ...first };
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
    const ofTask = (list: Json[], id: string) =>
      list.filter((p) => p.new?.id === id || p.new?.task_id === id || p.old?.id === id);

    try {
      const a = await subscribe(tokens.alice, [
        { event: "*", schema: "public", table: "tasks" },
        { event: "INSERT", schema: "public", table: "events" },
      ]);
      const b = await subscribe(
        tokens.bob,
        [{ event: "*", schema: "public", table: "tasks" }],
        "1.0.0",
      );
      const service = await subscribe(tokens.service, [{ event: "*", schema: "public" }]);

      await t.step("join answers SUBSCRIBED and then 'Subscribed to PostgreSQL'", async () => {
        for (const s of [a, b, service]) assert.equal(s.status, "SUBSCRIBED", String(s.err));
        await until(() => a.system.length > 0 && service.system.length > 0, "system messages");
        assert.deepEqual(a.system[0], {
          extension: "postgres_changes",
          status: "ok",
          message: "Subscribed to PostgreSQL",
          channel: a.channel.subTopic,
        });
      });

      let aliceTask = "";
      let bobTask = "";
      await t.step(
        "a user gets INSERT and UPDATE of their own task and nothing of another's",
        async () => {
          bobTask = await createTask(bob);
          aliceTask = await createTask(alice);
          await cancelTask(aliceTask);
          await until(() => ofTask(a.got[0], aliceTask).length === 2, "alice's task changes");
          assert.deepEqual(ofTask(a.got[0], bobTask), [], "alice sees nothing of bob's task");
          const [insert, update] = ofTask(a.got[0], aliceTask);
          assert.equal(insert.eventType, "INSERT");
          assert.equal(insert.schema, "public");
          assert.equal(insert.table, "tasks");
          assert.match(insert.commit_timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
          assert.equal(insert.errors, null);
          assert.equal(insert.new.owner, alice);
          assert.equal(insert.new.status, "queued");
          assert.deepEqual(insert.new.options, {}, "jsonb arrives as an object");
          assert.deepEqual(insert.new.attempts, {}, "no stage tried yet");
          assert.deepEqual(insert.old, {});
          assert.equal(update.eventType, "UPDATE");
          assert.equal(update.new.status, "cancelled");
          assert.deepEqual(update.old, { id: aliceTask }, "UPDATE carries only the old key");
          // bob (on the 1.0.0 serializer) gets his own task only.
          await until(() => ofTask(b.got[0], bobTask).length === 1, "bob's task insert");
          assert.deepEqual(ofTask(b.got[0], aliceTask), []);
        },
      );

      await t.step("a user subscribed to events gets only their own events", async () => {
        await until(() => ofTask(a.got[1], aliceTask).length === 2, "alice's events");
        const types = ofTask(a.got[1], aliceTask).map((p) => p.new.event_type);
        assert.deepEqual(types, ["task.created", "task.cancelled"]);
        assert.ok(a.got[1].every((p) => p.new.owner === alice), "only alice's events");
        const created = a.got[1][0];
        assert.equal(typeof created.new.seq, "number");
        assert.equal(typeof created.new.payload, "object");
      });

      await t.step("service_role gets every change", async () => {
        await until(
          () =>
            ofTask(service.got[0], aliceTask).length === 4 &&
            ofTask(service.got[0], bobTask).length === 2,
          "every change",
        );
        const tables = ofTask(service.got[0], bobTask).map((p) => `${p.table}:${p.eventType}`);
        assert.deepEqual(tables.sort(), ["events:INSERT", "tasks:INSERT"]);
      });

      await t.step("an ownerless task reaches anon only through a filter naming it", async () => {
        const task = await createTask(null);
        const named = await subscribe(tokens.anon, [
          { event: "*", schema: "public", table: "tasks", filter: `id=eq.${task}` },
          { event: "*", schema: "public", table: "events", filter: `task_id=eq.${task}` },
          { event: "*", schema: "public", table: "tasks" },
        ]);
        const unfiltered = await subscribe(tokens.anon, [
          { event: "*", schema: "public", table: "tasks" },
          { event: "*", schema: "public", table: "events" },
        ]);
        await cancelTask(task);
        await until(() => named.got[0].length === 1 && named.got[1].length === 1, "named changes");
        assert.equal(named.got[0][0].eventType, "UPDATE");
        assert.equal(named.got[0][0].new.id, task);
        assert.equal(named.got[1][0].new.event_type, "task.cancelled");
        assert.deepEqual(
          named.got[2],
          [],
          "the unfiltered binding of the same channel gets nothing",
        );
        assert.deepEqual(unfiltered.got, [[], []], "an unfiltered anon subscriber gets nothing");
        assert.deepEqual(ofTask(a.got[0], task), [], "nor does another user");
      });

      await t.step("DELETE reaches service_role with the key only, and no user", async () => {
        // Visibility is asked when the change is read, so the row must still be there then
        // (as on Supabase, where RLS is checked on the current row when the WAL is read).
        const gone = await createTask(alice);
        await until(() => ofTask(a.got[0], gone).length === 1, "alice's insert");
        await tdb.db.query("delete from public.tasks where id = $1::uuid", [gone]);
        server.realtime.wake();
        const next = await createTask(alice);
        await until(() => ofTask(a.got[0], next).length === 1, "alice's next insert");
        assert.deepEqual(ofTask(a.got[0], gone).map((p) => p.eventType), ["INSERT"]);
        await until(
          () => ofTask(service.got[0], gone).some((p) => p.eventType === "DELETE"),
          "delete",
        );
        const del = ofTask(service.got[0], gone).find((p) =>
          p.table === "tasks" && p.eventType === "DELETE"
        );
        assert.deepEqual(del.old, { id: gone });
        assert.deepEqual(del.new, {});
      });

      await t.step("filters: event, neq/in/gt operators", async () => {
        const [{ max }] = await tdb.db.query<{ max: number }>(
          "select max(seq)::int as max from public.events",
        );
        const s = await subscribe(tokens.service, [
          {
            event: "INSERT",
            schema: "public",
            table: "events",
            filter: "event_type=in.(task.cancelled)",
          },
          { event: "UPDATE", schema: "public", table: "tasks", filter: "status=neq.queued" },
          { event: "INSERT", schema: "public", table: "events", filter: `seq=gt.${max}` },
        ]);
        const task = await createTask(bob);
        await cancelTask(task);
        await until(
          () => s.got[2].length === 2 && s.got[0].length === 1 && s.got[1].length === 1,
          "filtered",
        );
        assert.equal(s.got[0][0].new.event_type, "task.cancelled");
        assert.equal(s.got[1][0].new.status, "cancelled");
        assert.deepEqual(s.got[2].map((p) => p.new.event_type), ["task.created", "task.cancelled"]);
      });

      await t.step({
        name: "a change committed after a younger transaction's is not skipped (two sessions)",
        // PGlite is one session: two transactions cannot be open at once there.
        ignore: ENGINE !== "postgres",
        fn: async () => {
          const older = tdb.connect();
          const younger = tdb.connect();
          const gate = () => {
            let open = () => {};
            const opened = new Promise<void>((r) => open = r);
            return { open, opened };
          };
          const [olderHasXid, youngerWrote, olderMayWrite, youngerMayCommit] = [
            gate(),
            gate(),
            gate(),
            gate(),
          ];
          let olderTask = "";
          let youngerTask = "";
          const olderTx = older.transaction(async (tx) => {
            await tx.query("select pg_current_xact_id()"); // the lower xid
            olderHasXid.open();
            await olderMayWrite.opened;
            const [row] = await tx.query<{ task_id: string }>(
              "select task_id from darkroom.create_task(p_image_url => 'http://e.com/o.jpg', p_owner => $1::uuid)",
              [alice],
            );
            olderTask = row.task_id;
          });
          await within(olderHasXid.opened, "older xid");
          const youngerTx = younger.transaction(async (tx) => {
            const [row] = await tx.query<{ task_id: string }>(
              "select task_id from darkroom.create_task(p_image_url => 'http://e.com/y.jpg', p_owner => $1::uuid)",
              [alice],
            );
            youngerTask = row.task_id; // the lower seq
            youngerWrote.open();
            await youngerMayCommit.opened;
          });
          await within(youngerWrote.opened, "younger write");
          olderMayWrite.open();
          await within(olderTx, "older commit");
          server.realtime.wake();
          await until(
            () => ofTask(a.got[0], olderTask).length === 1,
            "the older transaction's task",
          );
          youngerMayCommit.open();
          await within(youngerTx, "younger commit");
          server.realtime.wake();
          await until(
            () => ofTask(a.got[0], youngerTask).length === 1,
            "the younger transaction's task",
          );
        },
      });

      await t.step(
        "a binding the server cannot serve gets a postgres_changes system error",
        async () => {
          const s = await subscribe(tokens.alice, [
            { event: "*", schema: "public", table: "tasks", filter: "nope=eq.1" },
          ]);
          assert.equal(s.status, "SUBSCRIBED");
          await until(() => s.system.length > 0, "system message");
          assert.equal(s.system[0].extension, "postgres_changes");
          assert.equal(s.system[0].status, "error");
          assert.match(s.system[0].message, /nope/);
          const t2 = await subscribe(tokens.alice, [{
            event: "*",
            schema: "public",
            table: "images",
          }]);
          await until(() => t2.system.length > 0, "system message");
          assert.match(
            t2.system[0].message,
            /^Unable to subscribe to changes with given parameters/,
          );
        },
      );

      await t.step("a channel whose token expires is ended", async () => {
        const soon = await signJwt({ role: "authenticated", sub: alice }, secret, now() + 2);
        const s = await subscribe(soon, [{ event: "*", schema: "public", table: "tasks" }]);
        assert.equal(s.status, "SUBSCRIBED");
        await until(() => s.statuses.includes("CLOSED"), "channel closed at expiry");
        const last = s.system.at(-1);
        assert.equal(last.status, "error");
        assert.match(last.message, /^Token has expired \d+ seconds ago$/);
      });

      await t.step("the change log is not readable by client roles", async () => {
        for (const token of [tokens.anon, tokens.alice, tokens.service]) {
          const caller = await new JwtVerifier({ secret }).verify(token);
          await assert.rejects(
            asCaller(tdb.db, caller, (tx) => tx.query("select * from _realtime.changes")),
            /permission denied/,
          );
        }
      });

      await t.step("installSql() can run again", async () => {
        await server.realtime.installSql();
        const task = await createTask(alice);
        await until(() => ofTask(a.got[0], task).length === 1, "a change after reinstalling");
      });

      await t.step(
        "a join with a forged or expired token is refused with Realtime's reason",
        async () => {
          const forged = await subscribe(tokens.forged, [{
            event: "*",
            schema: "public",
            table: "tasks",
          }]);
          assert.equal(forged.status, "CHANNEL_ERROR");
          assert.equal(forged.err?.message, "JwtSignatureError: Failed to validate JWT signature");
          const expired = await subscribe(tokens.expired, [{
            event: "*",
            schema: "public",
            table: "tasks",
          }]);
          assert.equal(expired.status, "CHANNEL_ERROR");
          assert.match(
            expired.err?.message ?? "",
            /^InvalidJWTToken: Token has expired \d+ seconds ago$/,
          );
        },
      );

      await t.step("a socket whose apikey is forged is refused with 403", async () => {
        const url = `${
          server.url.replace("http", "ws")
        }/realtime/v1/websocket?apikey=${tokens.forged}&vsn=2.0.0`;
        const res = await fetch(url.replace("ws", "http"), {
          headers: { upgrade: "websocket", connection: "upgrade" },
        });
        await res.body?.cancel();
        assert.equal(res.status, 403);
      });

      await t.step("access_token: a new valid token changes what the channel sees", async () => {
        const s = await subscribe(tokens.anon, [{ event: "*", schema: "public", table: "tasks" }]);
        s.auth.token = tokens.bob;
        await s.client.realtime.setAuth();
        // The refresh is handled before anything after it on the socket: a heartbeat round trip.
        await heartbeat(s.client);
        const task = await createTask(bob);
        await until(() => ofTask(s.got[0], task).length === 1, "bob's task after the refresh");
      });

      await t.step(
        "access_token: an invalid token ends the channel with a system error",
        async () => {
          const s = await subscribe(tokens.alice, [{
            event: "*",
            schema: "public",
            table: "tasks",
          }]);
          s.auth.token = tokens.forged;
          await s.client.realtime.setAuth();
          await until(() => s.statuses.includes("CLOSED"), "channel closed");
          assert.deepEqual(s.system.at(-1), {
            extension: "system",
            status: "error",
            message: ":signature_error",
            channel: s.channel.subTopic,
          });
        },
      );

      await t.step(
        "wire (vsn 2.0.0): array frames, join reply ids, leave then phx_close",
        async () => {
          const url = `${server.url.replace("http", "ws")}/realtime/v1/websocket`;
          const ws = new WebSocket(`${url}?apikey=${tokens.anon}&vsn=2.0.0`);
          const frames: Json[] = [];
          ws.onmessage = (e) => frames.push(JSON.parse(e.data));
          const closed = new Promise((r) => ws.onclose = r);
          await within(new Promise((r) => ws.onopen = r), "socket open");
          const pg = [{ event: "*", schema: "public", table: "tasks" }];
          const join = { config: { postgres_changes: pg }, access_token: tokens.service };
          ws.send(JSON.stringify([null, "1", "phoenix", "heartbeat", {}]));
          ws.send(JSON.stringify(["2", "2", "realtime:raw", "phx_join", join]));
          ws.send(JSON.stringify(["2", "3", "realtime:raw", "phx_leave", {}]));
          ws.send(JSON.stringify([null, "4", "realtime:other", "broadcast", {}]));
          await until(() => frames.length >= 6, "six frames");
          ws.close();
          await within(closed, "socket close");
          assert.deepEqual(frames[0], [null, "1", "phoenix", "phx_reply", {
            status: "ok",
            response: {},
          }]);
          const [, , , , joinReply] = frames[1];
          assert.deepEqual(frames[1].slice(0, 4), ["2", "2", "realtime:raw", "phx_reply"]);
          assert.equal(joinReply.status, "ok");
          const [binding] = joinReply.response.postgres_changes;
          assert.ok(Number.isInteger(binding.id), "ids are integers, as :erlang.phash2 gives");
          assert.deepEqual(binding, { ...pg[0], id: binding.id });
          assert.deepEqual(frames[2], ["2", null, "realtime:raw", "system", {
            extension: "postgres_changes",
            status: "ok",
            message: "Subscribed to PostgreSQL",
            channel: "raw",
          }]);
          assert.deepEqual(frames[3], ["2", "3", "realtime:raw", "phx_reply", {
            status: "ok",
            response: {},
          }]);
          assert.deepEqual(frames[4], ["2", "2", "realtime:raw", "phx_close", {}]);
          assert.deepEqual(frames[5], [null, "4", "realtime:other", "phx_reply", {
            status: "error",
            response: { reason: "unmatched topic" },
          }]);
        },
      );

      await t.step("a broadcast push (binary frame) is acknowledged, not relayed", async () => {
        const client = await clientFor({ token: tokens.alice });
        const channel = client.channel(`room-${crypto.randomUUID()}`, {
          config: { broadcast: { ack: true } },
        });
        const status = await within(
          new Promise<string>((r) => channel.subscribe((s) => r(s))),
          "broadcast join",
        );
        assert.equal(status, "SUBSCRIBED");
        const sent = await channel.send({ type: "broadcast", event: "ping", payload: { n: 1 } });
        assert.equal(sent, "ok");
      });

      await t.step("heartbeats are answered", async () => {
        assert.equal(await heartbeat(a.client), "ok");
      });
    } finally {
      for (const c of clients) {
        await within(c.removeAllChannels(), "removeAllChannels", 5000).catch(() => {});
      }
      await server.close();
      await tdb.close();
    }
  },
});

/** Sends a heartbeat and resolves with its outcome ("ok" when the server answered). */
async function heartbeat(client: SupabaseClient): Promise<string> {
  const outcome = new Promise<string>((resolve) =>
    client.realtime.onHeartbeat((status) => status !== "sent" && resolve(status))
  );
  await client.realtime.sendHeartbeat();
  return await within(outcome, "heartbeat reply");
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}

Deno.test("parseFilter() and matchesFilter() compare by column type", () => {
  const columns: Column[] = [
    { name: "seq", type: "int8" },
    { name: "id", type: "uuid" },
    { name: "status", type: "text" },
    { name: "created_at", type: "timestamptz" },
    { name: "done", type: "bool" },
  ];
  const row = {
    seq: 10,
    id: "0b6e5f7c-0000-4000-8000-000000000001",
    status: "a,b",
    created_at: "2026-01-01T10:00:00.5+00:00",
    done: false,
  };
  const m = (f: string) => matchesFilter(parseFilter(f, columns), row);
  assert.ok(m("seq=gt.9") && m("seq=lte.10") && !m("seq=lt.10") && m("seq=neq.2"));
  assert.ok(m("seq=in.(1,10)") && !m("seq=in.(1,2)"));
  assert.ok(m("id=eq.0B6E5F7C-0000-4000-8000-000000000001"), "uuid case does not matter");
  assert.ok(m('status=eq."a,b"') && m('status=in.("a,b",c)'));
  assert.ok(
    m("created_at=gt.2026-01-01T09:59:59Z") && m("created_at=gt.2026-01-01T11:00:00+01:00"),
  );
  assert.ok(!m("created_at=lt.2026-01-01T11:00:00+01:00"), "instants, not strings");
  assert.ok(m("done=eq.false") && m("seq=gte.10,status=neq.x"), "conditions joined by commas");
  assert.ok(
    !matchesFilter(parseFilter("seq=neq.1", columns), { seq: null }),
    "null matches nothing",
  );
  assert.throws(() => parseFilter("nope=eq.1", columns), /does not exist/);
  assert.throws(() => parseFilter("seq=like.1", columns), /not supported/);
  assert.throws(() => parseFilter("seq", columns), /Error parsing/);
});

Deno.test({
  name: "row changes are logged only while a postgres_changes channel listens",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const tdb = await openTestDb();
    const server = await startRealtimeServer(tdb.db);
    const anon = await signJwt({ role: "anon" }, secret, "1h");
    const service = await signJwt({ role: "service_role" }, secret, "1h");
    const client = createClient(server.url, anon, {
      accessToken: () => Promise.resolve(service),
    });
    await client.realtime.setAuth();
    const logged = async () => {
      const [{ n }] = await tdb.db.query<{ n: number }>(
        "select count(*)::integer as n from _realtime.changes",
      );
      return n;
    };
    const createTask = async () => {
      const [row] = await tdb.db.query<{ task_id: string }>(
        "select task_id from darkroom.create_task(p_image_url => $1)",
        ["http://e.com/logged.jpg"],
      );
      server.realtime.wake();
      return row.task_id;
    };
    const join = (channel: ReturnType<typeof client.channel>) =>
      within(
        new Promise<string>((resolve) => channel.subscribe((status) => resolve(status))),
        "subscribe",
      );
    try {
      await createTask();
      assert.equal(await logged(), 0, "nobody listens: nothing logged");

      // A channel without postgres_changes bindings (broadcast) does not turn logging on.
      assert.equal(await join(client.channel(`b-${crypto.randomUUID()}`)), "SUBSCRIBED");
      await createTask();
      assert.equal(await logged(), 0, "a broadcast channel is no listener");

      const got: Json[] = [];
      const listener = client.channel(`pc-${crypto.randomUUID()}`)
        .on("postgres_changes", { event: "INSERT", schema: "public", table: "tasks" }, (p) => {
          got.push(p);
        });
      assert.equal(await join(listener), "SUBSCRIBED");
      const id = await createTask();
      await until(() => got.some((p) => p.new?.id === id), "the insert, once listened to");
      assert.ok(await logged() > 0, "logged while listened to");

      // The lease lapses when no server renews it (every listener gone): logging stops.
      await client.removeAllChannels();
      await tdb.db.query("update _realtime.listening set until = now() - interval '1 second'");
      const before = await logged();
      await createTask();
      assert.equal(await logged(), before, "the lease lapsed: nothing more logged");
    } finally {
      await client.removeAllChannels();
      await server.close();
      await tdb.close();
    }
  },
});
