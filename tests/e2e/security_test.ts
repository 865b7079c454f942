// The security catalogue: each step proves one thing a caller must not be able to do (or must
// be able to do only with the right key), on the whole local platform started in-process, over
// real HTTP on loopback and in SQL as the roles Supabase hands out. Real images go through the
// pipeline first, so tasks, images, tags and events exist to be leaked. Runs on PGlite, or on
// PostgreSQL when DATABASE_URL is set.
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { type Role, signJwt } from "../../shared/auth.ts";
import type { Db, Queryable } from "../../shared/db.ts";
import { parseFsSignedUrl, signFsToken } from "../../shared/storage/fs_store.ts";
import { loadOracle, startFixtureServer } from "../_helpers/fixtures.ts";
import { startTestPlatform, type TestPlatform, waitForTask } from "../_helpers/platform.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const WORKERS = ["download-worker", "metadata-worker", "ai-worker"] as const;

/** A response read once: status, headers and the body parsed as JSON when it is JSON. */
interface Reply {
  status: number;
  headers: Headers;
  json: Json;
  text: string;
}

async function call(
  url: string,
  opts: {
    method?: string;
    token?: string | null;
    authorization?: string;
    body?: unknown;
    headers?: Record<string, string>;
  } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  else if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["content-type"] = "application/json";
  }
  const res = await fetch(url, {
    method: opts.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
    redirect: "manual",
  });
  const text = await res.text();
  let json: Json = undefined;
  try {
    json = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, text };
}

/**
 * Asserts an error reply: the exact status, a JSON `{error: {code, message}}`, no stack trace.
 * `label` names the case in a failure.
 */
function expectError(
  r: Reply,
  status: number,
  code: string,
  message?: RegExp,
  label = "",
): void {
  const at = label ? `${label}: ` : "";
  assert.equal(r.status, status, `${at}expected ${status} ${code}, got ${r.status}: ${r.text}`);
  assert.ok(r.json && typeof r.json === "object", `${at}body is JSON: ${r.text}`);
  assert.deepEqual(Object.keys(r.json), ["error"], `${at}${r.text}`);
  assert.deepEqual(Object.keys(r.json.error).sort(), ["code", "message"], `${at}${r.text}`);
  assert.equal(r.json.error.code, code, `${at}${r.text}`);
  assert.equal(typeof r.json.error.message, "string");
  if (message) assert.match(r.json.error.message, message, `${at}${r.text}`);
  assert.doesNotMatch(r.text, /\bat .*\.(ts|js):\d+|file:\/\/|node_modules/, `${at}no stack trace`);
}

/** Parses the whole events of an SSE text (a blank line ends one; the last may be cut). */
function sseEvents(text: string): Json[] {
  const events: Json[] = [];
  for (const block of text.split("\n\n").slice(0, -1)) {
    const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) =>
      l.slice(5).trimStart()
    );
    if (data.length > 0) events.push(JSON.parse(data.join("\n")));
  }
  return events;
}

/**
 * Reads an SSE stream and returns the events' data, parsed: until `enough` says so (at most
 * 20 s, so a loaded machine is waited for), or for 1.5 s when nothing is expected.
 */
async function readStream(
  url: string,
  token: string | null,
  enough?: (events: Json[]) => boolean,
): Promise<Json[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), enough ? 20_000 : 1500);
  let text = "";
  try {
    const res = await fetch(url, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: ac.signal,
    });
    assert.equal(res.status, 200, `stream ${url}`);
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    const decoder = new TextDecoder();
    for await (const chunk of res.body!) {
      text += decoder.decode(chunk, { stream: true });
      if (enough?.(sseEvents(text))) {
        ac.abort();
        break;
      }
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
  }
  return sseEvents(text);
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

const b64url = (value: unknown) =>
  btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** Claims for SQL as a role: what PostgREST (and asCaller) put in request.jwt.claims. */
interface SqlCaller {
  role: "anon" | "authenticated";
  sub?: string;
  /** Sets darkroom.task_id, as the api does for the id in the URL. */
  taskId?: string;
}

/**
 * Runs `fn` in one transaction as `who`, with raw `set local role` and `set_config` (not through
 * asCaller), so these steps check the policies and grants themselves. `setup` runs first in the
 * same transaction as the database owner; its result is handed to `fn`. Always rolls back.
 */
async function inTxAs<T, S = undefined>(
  db: Db,
  who: SqlCaller,
  fn: (tx: Queryable, setup: S) => Promise<T>,
  setup?: (tx: Queryable) => Promise<S>,
): Promise<T> {
  const claims = who.sub ? { role: who.role, sub: who.sub } : { role: who.role };
  const rollback = new Error("rollback");
  let result: T | undefined;
  try {
    await db.transaction(async (tx) => {
      const prepared = setup ? await setup(tx) : undefined as S;
      await tx.query(`set local role ${who.role === "anon" ? "anon" : "authenticated"}`);
      await tx.query("select set_config('request.jwt.claims', $1, true)", [
        JSON.stringify(claims),
      ]);
      if (who.taskId !== undefined) {
        await tx.query("select set_config('darkroom.task_id', $1, true)", [who.taskId]);
      }
      result = await fn(tx, prepared);
      throw rollback;
    });
  } catch (err) {
    if (err !== rollback) throw err;
  }
  return result as T;
}

/** The rows of one statement run as `who` (see {@linkcode inTxAs}). */
function sqlAs<T>(db: Db, who: SqlCaller, sql: string, params: unknown[] = []): Promise<T[]> {
  return inTxAs(db, who, (tx) => tx.query<T>(sql, params));
}

/**
 * Asserts that `sql` as `who` is refused with SQLSTATE 42501 "permission denied for <on>" (e.g.
 * "table tasks", "function complete_stage", "schema pgmq"): the privilege itself refuses, not
 * something further in.
 */
async function expectDenied(
  db: Db,
  who: SqlCaller,
  on: string,
  sql: string,
  params: unknown[] = [],
) {
  await assert.rejects(
    sqlAs(db, who, sql, params),
    (err: Json) => {
      assert.equal(err?.code, "42501", `${sql}: ${err?.code} ${err?.message}`);
      assert.equal(String(err.message), `permission denied for ${on}`, sql);
      return true;
    },
    `${who.role} may not run: ${sql}`,
  );
}

Deno.test({
  name: "security: callers are isolated (local platform, real images)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const fixtures = startFixtureServer();
    const p: TestPlatform = await startTestPlatform();
    const secret = p.config.JWT_SECRET;
    const workerUrl = (name: string) => `${p.platform.url}/functions/v1/${name}`;
    const userA = crypto.randomUUID();
    const userB = crypto.randomUUID();
    const tokenA = await p.userToken(userA);
    const tokenB = await p.userToken(userB);
    const anonKey = p.platform.anonKey;
    const serviceKey = p.platform.serviceRoleKey;
    const submit = async (token: string, imageUrl: string) => {
      const r = await call(`${p.api}/tasks`, { token, body: { imageUrl } });
      assert.equal(r.status, 202, r.text);
      return r.json.taskId as string;
    };
    try {
      const oracle = await loadOracle();
      const shaOf = (file: string) => oracle.find((o) => o.file === file)!.sha256;

      // A: one completed task. B: one completed and one failed. Anon key: one completed.
      const [aTask, bTask, bFailed, anonTask] = await Promise.all([
        submit(tokenA, `${fixtures.url}/images/nikon_d70.jpg`),
        submit(tokenB, `${fixtures.url}/images/canon_powershot_s40.jpg`),
        submit(tokenB, `${fixtures.url}/status/404`),
        submit(anonKey, `${fixtures.url}/images/konica_minolta_z3.jpg`),
      ]);
      const aDone = await waitForTask(p.api, tokenA, aTask) as Json;
      const bDone = await waitForTask(p.api, tokenB, bTask) as Json;
      const bFailedDone = await waitForTask(p.api, tokenB, bFailed) as Json;
      const anonDone = await waitForTask(p.api, anonKey, anonTask) as Json;
      assert.equal(aDone.status, "completed", JSON.stringify(aDone.error));
      assert.equal(bDone.status, "completed", JSON.stringify(bDone.error));
      assert.equal(bFailedDone.status, "failed");
      assert.equal(anonDone.status, "completed", JSON.stringify(anonDone.error));
      const bTags: string[] = bDone.image.analysis.tags;
      const anonTags: string[] = anonDone.image.analysis.tags;
      assert.ok(bTags.length > 0 && anonTags.length > 0, "the images have tags");
      const aTasks = new Set([aTask]);
      const bTasks = new Set([bTask, bFailed]);
      // The tag index is a side effect (the tag-indexer subscriber, after image.analyzed), not
      // part of completion: wait until it holds the three images, so the tag steps below test who
      // sees them, not how soon they are indexed.
      const indexed = async () =>
        (await p.platform.db.query<{ n: number }>(
          "select count(distinct task_id)::integer as n from public.image_tags where task_id = any($1::uuid[])",
          [[aTask, bTask, anonTask]],
        ))[0].n;
      for (const until = Date.now() + 20_000; (await indexed()) < 3;) {
        if (Date.now() > until) {
          throw new Error("the tag indexer did not index the 3 images in 20 s");
        }
        await new Promise((r) => setTimeout(r, 50));
      }

      // ---- 1. User A reading user B's things over HTTP ------------------------------------

      await t.step("user A cannot read user B's task through GET /tasks/:id", async () => {
        expectError(await call(`${p.api}/tasks/${bTask}`, { token: tokenA }), 404, "not_found");
        expectError(
          await call(`${p.api}/tasks/${bTask.toUpperCase()}`, { token: tokenA }),
          404,
          "not_found",
        );
        const own = await call(`${p.api}/tasks/${bTask}`, { token: tokenB });
        assert.equal(own.status, 200, own.text);
        assert.equal(own.json.taskId, bTask);
        assert.equal(own.json.image.storagePath, undefined, "the store path is not sent");
      });

      await t.step(
        "user A cannot tell user B's task from a task that does not exist",
        async () => {
          const missing = crypto.randomUUID();
          const theirs = await call(`${p.api}/tasks/${bTask}`, { token: tokenA });
          const none = await call(`${p.api}/tasks/${missing}`, { token: tokenA });
          expectError(theirs, 404, "not_found");
          expectError(none, 404, "not_found");
          assert.equal(
            theirs.json.error.message.replace(bTask, "<id>"),
            none.json.error.message.replace(missing, "<id>"),
          );
        },
      );

      await t.step("user A cannot read user B's events through GET /tasks/:id/events", async () => {
        expectError(
          await call(`${p.api}/tasks/${bTask}/events`, { token: tokenA }),
          404,
          "not_found",
        );
        const own = await call(`${p.api}/tasks/${bTask}/events`, { token: tokenB });
        assert.equal(own.status, 200, own.text);
        assert.equal(own.json.length, 5);
        assert.ok(own.json.every((e: Json) => e.taskId === bTask));
      });

      await t.step(
        "user A cannot get user B's original through GET /tasks/:id/image; B gets a signed URL serving the bytes",
        async () => {
          expectError(
            await call(`${p.api}/tasks/${bTask}/image`, { token: tokenA }),
            404,
            "not_found",
          );
          expectError(
            await call(`${p.api}/tasks/${bTask}/image`, { token: anonKey }),
            404,
            "not_found",
          );
          const own = await call(`${p.api}/tasks/${bTask}/image`, { token: tokenB });
          assert.equal(own.status, 302, own.text);
          const location = own.headers.get("location")!;
          assert.ok(
            location.startsWith(`${p.platform.url}/storage/v1/object/sign/`),
            location,
          );
          const res = await fetch(location);
          assert.equal(res.status, 200);
          assert.equal(res.headers.get("content-type"), "image/jpeg");
          const bytes = new Uint8Array(await res.arrayBuffer());
          assert.equal(await sha256Hex(bytes), shaOf("canon_powershot_s40.jpg"));
          assert.equal(await sha256Hex(bytes), bDone.image.sha256);
        },
      );

      await t.step(
        "user A cannot get user B's thumbnail through GET /tasks/:id/thumbnail; B can",
        async () => {
          for (const token of [tokenA, anonKey]) {
            expectError(
              await call(`${p.api}/tasks/${bTask}/thumbnail`, { token }),
              404,
              "not_found",
            );
          }
          const own = await call(`${p.api}/tasks/${bTask}/thumbnail`, { token: tokenB });
          assert.equal(own.status, 302, own.text);
          const res = await fetch(own.headers.get("location")!);
          assert.equal(res.status, 200);
          assert.equal(res.headers.get("content-type"), "image/jpeg");
          await res.body?.cancel();
        },
      );

      await t.step("a tampered, re-pointed or expired signed URL is 403", async () => {
        const bUrl = new URL(
          (await call(`${p.api}/tasks/${bTask}/image`, { token: tokenB })).headers.get("location")!,
        );
        const aUrl = new URL(
          (await call(`${p.api}/tasks/${aTask}/image`, { token: tokenA })).headers.get("location")!,
        );
        const token = bUrl.searchParams.get("token")!;
        const expires = Number(bUrl.searchParams.get("expires"));

        const flipped = new URL(bUrl);
        const last = token.at(-2) === "A" ? "B" : "A";
        flipped.searchParams.set("token", token.slice(0, -2) + last + token.slice(-1));
        expectError(await call(flipped.href), 403, "forbidden");

        const longer = new URL(bUrl);
        longer.searchParams.set("expires", String(expires + 3600));
        expectError(await call(longer.href), 403, "forbidden");

        // A's valid token on B's object path.
        const swapped = new URL(bUrl);
        swapped.searchParams.set("token", aUrl.searchParams.get("token")!);
        swapped.searchParams.set("expires", aUrl.searchParams.get("expires")!);
        expectError(await call(swapped.href), 403, "forbidden");

        // Correctly signed with the platform's secret, but expired a minute ago.
        const parts = parseFsSignedUrl(bUrl)!;
        const past = Math.floor(Date.now() / 1000) - 60;
        const expired = new URL(bUrl);
        expired.searchParams.set(
          "token",
          await signFsToken(secret, parts.bucket, parts.path, past),
        );
        expired.searchParams.set("expires", String(past));
        expectError(await call(expired.href), 403, "forbidden");

        const unsigned = new URL(bUrl);
        unsigned.searchParams.delete("token");
        unsigned.searchParams.delete("expires");
        expectError(await call(unsigned.href), 400, "invalid_request");

        const untouched = await fetch(bUrl);
        await untouched.body?.cancel();
        assert.equal(untouched.status, 200, "the untouched URL still works");
      });

      await t.step("user A gets none of user B's images through GET /images?tag=", async () => {
        for (const tag of bTags) {
          const q = `${p.api}/images?tag=${encodeURIComponent(tag)}`;
          const a = await call(q, { token: tokenA });
          assert.equal(a.status, 200, a.text);
          assert.deepEqual(
            a.json.images.filter((i: Json) => !aTasks.has(i.taskId)),
            [],
            `A's /images?tag=${tag} holds only A's`,
          );
          const b = await call(q, { token: tokenB });
          assert.equal(b.status, 200, b.text);
          assert.deepEqual(b.json.images.map((i: Json) => i.taskId), [bTask], `B's tag ${tag}`);
        }
      });

      await t.step(
        "user A's /events/stream carries A's events and none of B's; ?taskId=<B's task> carries nothing",
        async () => {
          const [aAll, aOnB, bAll] = await Promise.all([
            readStream(
              `${p.api}/events/stream`,
              tokenA,
              (es) => es.filter((e) => e.taskId === aTask).length >= 5,
            ),
            readStream(`${p.api}/events/stream?taskId=${bTask}`, tokenA),
            readStream(
              `${p.api}/events/stream`,
              tokenB,
              (es) => es.some((e) => e.taskId === bTask),
            ),
          ]);
          assert.ok(
            aAll.filter((e) => e.taskId === aTask).length >= 5,
            `A's stream has A's events: ${aAll.length}`,
          );
          assert.deepEqual(aAll.filter((e) => !aTasks.has(e.taskId)), [], "only A's events");
          assert.deepEqual(aOnB, [], "naming B's task gives A nothing");
          assert.ok(bAll.some((e) => e.taskId === bTask), "B's stream has B's events");
          assert.deepEqual(bAll.filter((e) => !bTasks.has(e.taskId)), [], "only B's events");
        },
      );

      await t.step("user A's GET /stats counts only A's tasks", async () => {
        // stages and ai come from the analytics rollups, which follow the events within a
        // worker run; tasks is exact at once.
        let a = await call(`${p.api}/stats`, { token: tokenA });
        for (const until = Date.now() + 20_000; a.json.ai?.analyzed === 0 && Date.now() < until;) {
          await new Promise((r) => setTimeout(r, 200));
          a = await call(`${p.api}/stats`, { token: tokenA });
        }
        assert.equal(a.status, 200, a.text);
        assert.equal(a.json.scope, "own");
        assert.deepEqual(a.json.tasks, {
          queued: 0,
          processing: 0,
          completed: 1,
          failed: 0,
          cancelled: 0,
        });
        assert.equal(a.json.ai.analyzed, 1);
        assert.equal(a.json.stages.total?.count, 1);
        const b = await call(`${p.api}/stats`, { token: tokenB });
        assert.deepEqual(b.json.tasks, {
          queued: 0,
          processing: 0,
          completed: 1,
          failed: 1,
          cancelled: 0,
        });
        const all = await call(`${p.api}/stats`, { token: serviceKey });
        assert.equal(all.json.scope, "all");
        assert.equal(all.json.tasks.completed, 3, "service_role sees A's, B's and the anon task");
      });

      await t.step("user A cannot cancel or retry user B's task (404)", async () => {
        // Were A allowed, cancel of a completed task would be 409 and retry of a failed one 202.
        expectError(
          await call(`${p.api}/tasks/${bTask}/cancel`, { method: "POST", token: tokenA }),
          404,
          "not_found",
        );
        expectError(
          await call(`${p.api}/tasks/${bFailed}/retry`, { method: "POST", token: tokenA }),
          404,
          "not_found",
        );
        const still = await call(`${p.api}/tasks/${bFailed}`, { token: tokenB });
        assert.equal(still.json.status, "failed", "B's task is untouched");
        assert.equal(still.json.attempts.download, 1);
        expectError(
          await call(`${p.api}/tasks/${bTask}/cancel`, { method: "POST", token: tokenB }),
          409,
          "conflict",
        );
      });

      await t.step(
        "the anon key cannot cancel or retry a user's task by its id (404)",
        async () => {
          // Were the anon key allowed, cancel of a completed task would be 409 and retry of a
          // failed one 202 (re-running B's task).
          const cancel = await call(`${p.api}/tasks/${bTask}/cancel`, {
            method: "POST",
            token: anonKey,
          });
          const retry = await call(`${p.api}/tasks/${bFailed}/retry`, {
            method: "POST",
            token: anonKey,
          });
          // Let a wrongly re-queued task end again before the next steps look at B's data.
          const after = await waitForTask(p.api, tokenB, bFailed) as Json;
          assert.deepEqual({
            cancel: `${cancel.status} ${cancel.text}`,
            retry: `${retry.status} ${retry.text}`,
            bFailedAfter: `${after.status}, ${after.attempts.download} download attempt(s)`,
          }, {
            cancel: `404 ${
              JSON.stringify({
                error: { code: "not_found", message: `Task ${bTask} not found` },
              })
            }`,
            retry: `404 ${
              JSON.stringify({
                error: { code: "not_found", message: `Task ${bFailed} not found` },
              })
            }`,
            bFailedAfter: "failed, 1 download attempt(s)",
          });
          expectError(cancel, 404, "not_found");
          expectError(retry, 404, "not_found");
        },
      );

      // ---- 2. The same isolation in SQL, as the roles PostgREST would use -----------------

      const db = p.platform.db;
      const sqlA: SqlCaller = { role: "authenticated", sub: userA };

      await t.step(
        "as authenticated with A's claims, select from tasks, images and events returns only A's rows",
        async () => {
          const tasks = await sqlAs<{ id: string; owner: string }>(
            db,
            sqlA,
            "select id, owner from public.tasks",
          );
          assert.deepEqual(tasks, [{ id: aTask, owner: userA }]);
          const images = await sqlAs<{ task_id: string; owner: string }>(
            db,
            sqlA,
            "select task_id, owner from public.images",
          );
          assert.deepEqual(images, [{ task_id: aTask, owner: userA }]);
          const events = await sqlAs<{ task_id: string; owner: string }>(
            db,
            sqlA,
            "select task_id, owner from public.events",
          );
          assert.ok(events.length >= 5, `A's events: ${events.length}`);
          assert.ok(events.every((e) => e.task_id === aTask && e.owner === userA));
        },
      );

      await t.step(
        "image_tags and deliveries show A only A's rows, and clients cannot write them",
        async () => {
          // The side-effect consumers write these as the database owner; fill one row per task.
          for (const taskId of [aTask, bTask]) {
            await db.query(
              `insert into public.image_tags (tag, image_id, task_id, owner)
               select 'secret-tag', i.id, i.task_id, i.owner from public.images i where i.task_id = $1`,
              [taskId],
            );
            await db.query(
              `insert into public.deliveries (event_id, task_id, owner, url)
               select e.id, e.task_id, e.owner, 'https://hooks.example.com/x' from public.events e
                where e.task_id = $1 and e.event_type = 'task.completed'`,
              [taskId],
            );
          }
          const tags = await sqlAs<{ task_id: string }>(
            db,
            sqlA,
            "select task_id from public.image_tags",
          );
          // The tag indexer has indexed both images too: A sees A's rows, all of them and only.
          assert.deepEqual([...new Set(tags.map((r) => r.task_id))], [aTask]);
          const deliveries = await sqlAs<{ task_id: string }>(
            db,
            sqlA,
            "select task_id from public.deliveries",
          );
          assert.deepEqual([...new Set(deliveries.map((r) => r.task_id))], [aTask]);
          for (const table of ["image_tags", "deliveries"]) {
            assert.deepEqual(
              await sqlAs(db, { role: "anon" }, `select 1 from public.${table}`),
              [],
              `anon lists no ${table}`,
            );
            assert.deepEqual(
              await sqlAs(db, { role: "anon", taskId: bTask }, `select 1 from public.${table}`),
              [],
              `anon naming an owned task sees none of its ${table}`,
            );
            await expectDenied(db, sqlA, `table ${table}`, `delete from public.${table}`);
          }
          await db.query("delete from public.image_tags where tag = 'secret-tag'");
          await db.query("delete from public.deliveries where url = 'https://hooks.example.com/x'");
        },
      );

      await t.step(
        "as authenticated, naming another user's task id via darkroom.task_id shows nothing",
        async () => {
          const who = { ...sqlA, taskId: bTask };
          assert.deepEqual(
            await sqlAs(db, who, "select id from public.tasks where id <> $1", [aTask]),
            [],
          );
          assert.deepEqual(
            await sqlAs(db, who, "select id from public.events where task_id = $1", [bTask]),
            [],
          );
          assert.deepEqual(
            await sqlAs(db, who, "select id from public.images where task_id = $1", [bTask]),
            [],
          );
        },
      );

      await t.step(
        "as authenticated, insert into tasks, update tasks and delete from events are refused (42501)",
        async () => {
          await expectDenied(
            db,
            sqlA,
            "table tasks",
            "insert into public.tasks (owner, image_url) values ($1, 'https://example.com/a.jpg')",
            [userA],
          );
          await expectDenied(
            db,
            sqlA,
            "table tasks",
            "update public.tasks set status = 'cancelled' where id = $1",
            [aTask],
          );
          await expectDenied(db, sqlA, "table events", "delete from public.events");
          await expectDenied(db, sqlA, "table images", "delete from public.images");
          await expectDenied(db, sqlA, "table images", "update public.images set owner = $1", [
            userB,
          ]);
          await expectDenied(db, { role: "anon" }, "table tasks", "delete from public.tasks");
        },
      );

      await t.step(
        "as authenticated or anon, the worker transitions (begin_stage, complete_stage, fail_stage, schedule_retry) are refused (42501)",
        async () => {
          for (const who of [sqlA, { role: "anon" } as SqlCaller]) {
            await expectDenied(
              db,
              who,
              "function complete_stage",
              `select darkroom.complete_stage(p_task_id => $1::uuid, p_stage => 'download',
                 p_msg_id => 1, p_result => '{}'::jsonb, p_source => 'download-worker')`,
              [aTask],
            );
            await expectDenied(
              db,
              who,
              "function begin_stage",
              `select * from darkroom.begin_stage(p_stage => 'download', p_msg_ids => array[1]::bigint[],
                 p_task_ids => array[$1]::uuid[], p_max_attempts => 5)`,
              [aTask],
            );
            await expectDenied(
              db,
              who,
              "function fail_stage",
              `select darkroom.fail_stage(p_task_id => $1::uuid, p_stage => 'download', p_msg_id => 1,
                 p_code => 'internal', p_message => 'x', p_source => 'download-worker')`,
              [aTask],
            );
            await expectDenied(
              db,
              who,
              "function schedule_retry",
              `select darkroom.schedule_retry(p_task_id => $1::uuid, p_stage => 'download',
                 p_msg_id => 1, p_delay_seconds => 0, p_code => 'internal', p_message => 'x',
                 p_source => 'download-worker')`,
              [aTask],
            );
          }
        },
      );

      await t.step(
        "as authenticated, create_task ignores p_owner: a user cannot plant a task on another user",
        async () => {
          const rows = await inTxAs(db, sqlA, async (tx) => {
            const [created] = await tx.query<{ task_id: string }>(
              `select task_id from darkroom.create_task(
                 p_image_url => 'https://example.com/p.jpg', p_owner => $1::uuid)`,
              [userB],
            );
            return await tx.query<{ owner: string | null }>(
              "select owner from public.tasks where id = $1",
              [created.task_id],
            );
          });
          assert.deepEqual(rows, [{ owner: userA }]);
        },
      );

      await t.step(
        "as anon naming no task id, tasks, images and events return zero rows",
        async () => {
          for (const table of ["tasks", "images", "events"]) {
            assert.deepEqual(
              await sqlAs(db, { role: "anon" }, `select * from public.${table}`),
              [],
              table,
            );
            assert.deepEqual(
              await sqlAs(db, { role: "anon", taskId: "" }, `select * from public.${table}`),
              [],
              `${table} with an empty darkroom.task_id`,
            );
          }
        },
      );

      await t.step(
        "as anon naming an ownerless task's id via darkroom.task_id, exactly that task is visible",
        async () => {
          const who: SqlCaller = { role: "anon", taskId: anonTask };
          assert.deepEqual(await sqlAs(db, who, "select id from public.tasks"), [{ id: anonTask }]);
          assert.deepEqual(await sqlAs(db, who, "select task_id from public.images"), [{
            task_id: anonTask,
          }]);
          const events = await sqlAs<{ task_id: string }>(
            db,
            who,
            "select task_id from public.events",
          );
          assert.ok(events.length >= 5 && events.every((e) => e.task_id === anonTask));
          // Naming an owned task's id shows nothing: only ownerless rows can be named.
          for (const table of ["tasks", "images", "events"]) {
            assert.deepEqual(
              await sqlAs(db, { role: "anon", taskId: aTask }, `select * from public.${table}`),
              [],
              `anon naming A's task, ${table}`,
            );
          }
        },
      );

      await t.step(
        "as anon or another user, cancel_task and retry_task of a user's queued or failed task return no row and change nothing",
        async () => {
          // A's tasks in flight and failed, made inside the rolled-back transaction as the owner.
          const setup = async (tx: Queryable) => {
            const make = async () =>
              (await tx.query<{ task_id: string }>(
                `select task_id from darkroom.create_task(
                   p_image_url => 'https://example.com/q.jpg', p_owner => $1::uuid)`,
                [userA],
              ))[0].task_id;
            const queued = await make();
            const failed = await make();
            await tx.query(
              `update public.tasks set status = 'failed', error_code = 'internal',
                 error_message = 'x', error_stage = 'download' where id = $1`,
              [failed],
            );
            return { queued, failed };
          };
          const seen: Record<string, unknown> = {};
          for (
            const who of [
              { role: "anon" } as SqlCaller,
              { role: "authenticated", sub: userB } as SqlCaller,
            ]
          ) {
            seen[who.role] = await inTxAs(db, who, async (tx, ids) => ({
              cancelQueued: await tx.query(
                "select * from darkroom.cancel_task(p_task_id => $1::uuid)",
                [ids.queued],
              ),
              retryFailed: await tx.query(
                "select * from darkroom.retry_task(p_task_id => $1::uuid)",
                [ids.failed],
              ),
              cancelCompleted: await tx.query(
                "select * from darkroom.cancel_task(p_task_id => $1::uuid)",
                [aTask],
              ),
            }), setup);
          }
          const nothing = { cancelQueued: [], retryFailed: [], cancelCompleted: [] };
          assert.deepEqual(seen, { anon: nothing, authenticated: nothing });
        },
      );

      await t.step(
        "the pgmq tables, pgmq functions and rate-limit buckets are closed to anon and authenticated",
        async () => {
          for (const who of [{ role: "anon" } as SqlCaller, sqlA]) {
            await expectDenied(db, who, "schema pgmq", "select * from pgmq.q_image_download");
            await expectDenied(db, who, "schema pgmq", "select * from pgmq.a_ai_processing");
            await expectDenied(db, who, "schema pgmq", "select * from pgmq.meta");
            await expectDenied(
              db,
              who,
              "schema pgmq",
              "select * from pgmq.read('image_download', 30, 10)",
            );
            await expectDenied(
              db,
              who,
              "schema pgmq",
              `select pgmq.send('image_download', jsonb_build_object('taskId', $1::text))`,
              [aTask],
            );
            await expectDenied(
              db,
              who,
              "table rate_limit_buckets",
              "select * from darkroom.rate_limit_buckets",
            );
            await expectDenied(
              db,
              who,
              "function take_rate_limit_tokens",
              "select * from darkroom.take_rate_limit_tokens('x', 1, 1, 1)",
            );
          }
        },
      );

      // ---- 3. Tokens ----------------------------------------------------------------------

      await t.step(
        "a missing, non-Bearer, garbage, foreign-signed, alg:none, expired, unknown-role or sub-less token is 401 on /tasks and on a worker",
        async () => {
          const now = Math.floor(Date.now() / 1000);
          const algNone = (claims: Record<string, unknown>) =>
            `${b64url({ alg: "none", typ: "JWT" })}.${
              b64url({ ...claims, iat: now, exp: now + 3600 })
            }.`;
          const hs512 = await new SignJWT({ role: "service_role" })
            .setProtectedHeader({ alg: "HS512", typ: "JWT" })
            .setIssuedAt()
            .setExpirationTime("1h")
            .sign(new TextEncoder().encode(secret));
          const cases: [string, string | null][] = [
            ["no Authorization header", null],
            ["a Basic header", `Basic ${btoa("user:password")}`],
            ["a valid token without Bearer", serviceKey],
            ["Bearer with nothing", "Bearer "],
            ["garbage", "Bearer not.a.jwt"],
            ["garbage base64", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA"],
            [
              "signed with another secret",
              `Bearer ${await signJwt(
                { role: "service_role" },
                "another-secret-that-is-at-least-32-characters",
              )}`,
            ],
            ["alg: none (service_role)", `Bearer ${algNone({ role: "service_role" })}`],
            [
              "alg: none (authenticated)",
              `Bearer ${algNone({ role: "authenticated", sub: userA })}`,
            ],
            ["HS512 with the right secret", `Bearer ${hs512}`],
            [
              "expired",
              `Bearer ${await signJwt({ role: "authenticated", sub: userA }, secret, now - 60)}`,
            ],
            [
              "expired service_role",
              `Bearer ${await signJwt({ role: "service_role" }, secret, now - 60)}`,
            ],
            [
              "role postgres",
              `Bearer ${await signJwt({ role: "postgres" as Role }, secret)}`,
            ],
            [
              "role supabase_admin",
              `Bearer ${await signJwt({ role: "supabase_admin" as Role, sub: userA }, secret)}`,
            ],
            [
              "no role claim",
              `Bearer ${await new SignJWT({ sub: userA }).setProtectedHeader({ alg: "HS256" })
                .setExpirationTime("1h").sign(new TextEncoder().encode(secret))}`,
            ],
            [
              "authenticated without sub",
              `Bearer ${await signJwt({ role: "authenticated" }, secret)}`,
            ],
            [
              "authenticated with a non-UUID sub",
              `Bearer ${await signJwt({ role: "authenticated", sub: "alice" }, secret)}`,
            ],
            [
              "authenticated with an injected sub",
              `Bearer ${await signJwt(
                { role: "authenticated", sub: `${userA}' or '1'='1` },
                secret,
              )}`,
            ],
          ];
          for (const [name, authorization] of cases) {
            const auth = authorization === null ? {} : { authorization };
            const post = await call(`${p.api}/tasks`, {
              ...auth,
              body: { imageUrl: `${fixtures.url}/images/nikon_d70.jpg` },
            });
            expectError(post, 401, "unauthorized", undefined, `POST /tasks, ${name}`);
            expectError(
              await call(`${p.api}/tasks/${aTask}`, auth),
              401,
              "unauthorized",
              undefined,
              `GET /tasks/:id, ${name}`,
            );
            expectError(
              await call(workerUrl("download-worker"), { method: "POST", ...auth }),
              401,
              "unauthorized",
              undefined,
              `POST download-worker, ${name}`,
            );
          }
          const service = await call(`${p.api}/stats`, { token: serviceKey });
          assert.equal(service.json.tasks.queued + service.json.tasks.processing, 0);
          assert.equal(
            Object.values(service.json.tasks as Record<string, number>).reduce((a, n) => a + n),
            4,
            "no rejected request created a task (only the 4 set up exist)",
          );
        },
      );

      // ---- 4. Worker functions ------------------------------------------------------------

      await t.step(
        "worker functions answer 403 to a user token and the anon key, 401 without a token, 200 to service_role",
        async () => {
          for (const name of WORKERS) {
            expectError(
              await call(workerUrl(name), { method: "POST", token: tokenA }),
              403,
              "forbidden",
            );
            expectError(
              await call(workerUrl(name), { method: "POST", token: anonKey }),
              403,
              "forbidden",
            );
            expectError(await call(workerUrl(name), { method: "POST" }), 401, "unauthorized");
            const ok = await call(workerUrl(name), { method: "POST", token: serviceKey });
            assert.equal(ok.status, 200, ok.text);
            assert.equal(ok.json.worker, name);
            for (const k of ["read", "advanced", "completed", "failed", "ignored", "errors"]) {
              assert.equal(typeof ok.json[k], "number", `${name} summary.${k}`);
            }
          }
        },
      );

      // ---- 5. Anon-key tasks: readable by id, never listed --------------------------------

      await t.step(
        "an anon-key task is readable by its id with the anon key, an owned task is not",
        async () => {
          const r = await call(`${p.api}/tasks/${anonTask}`, { token: anonKey });
          assert.equal(r.status, 200, r.text);
          assert.equal(r.json.taskId, anonTask);
          const events = await call(`${p.api}/tasks/${anonTask}/events`, { token: anonKey });
          assert.equal(events.status, 200);
          assert.equal(events.json.length, 5);
          const image = await call(`${p.api}/tasks/${anonTask}/image`, { token: anonKey });
          assert.equal(image.status, 302);
          expectError(await call(`${p.api}/tasks/${aTask}`, { token: anonKey }), 404, "not_found");
          expectError(
            await call(`${p.api}/tasks/${aTask}/events`, { token: anonKey }),
            404,
            "not_found",
          );
        },
      );

      await t.step(
        "an anon-key task appears on no user's /images, /stats or stream, nor on the anon key's own listing",
        async () => {
          for (const tag of anonTags) {
            const q = `${p.api}/images?tag=${encodeURIComponent(tag)}`;
            for (const [who, token] of [["A", tokenA], ["B", tokenB], ["anon", anonKey]]) {
              const r = await call(q, { token });
              assert.equal(r.status, 200, r.text);
              assert.deepEqual(
                r.json.images.filter((i: Json) => i.taskId === anonTask),
                [],
                `${who}'s /images?tag=${tag}`,
              );
            }
          }
          const anonStats = await call(`${p.api}/stats`, { token: anonKey });
          assert.equal(anonStats.status, 200);
          assert.equal(anonStats.json.tasks.completed, 0, "the anon key's /stats counts nothing");
          assert.equal(anonStats.json.ai.analyzed, 0);
          const aStats = await call(`${p.api}/stats`, { token: tokenA });
          assert.equal(aStats.json.tasks.completed, 1, "A's /stats has only A's task");

          const [aAll, bAll, anonAll, anonNamed, anonOnA] = await Promise.all([
            readStream(`${p.api}/events/stream`, tokenA, (es) => es.length >= 5),
            readStream(`${p.api}/events/stream`, tokenB, (es) => es.length >= 5),
            readStream(`${p.api}/events/stream`, anonKey),
            readStream(
              `${p.api}/events/stream?taskId=${anonTask}`,
              anonKey,
              (es) => es.length >= 5,
            ),
            readStream(`${p.api}/events/stream?taskId=${aTask}`, anonKey),
          ]);
          assert.deepEqual(aAll.filter((e) => e.taskId === anonTask), [], "not on A's stream");
          assert.deepEqual(bAll.filter((e) => e.taskId === anonTask), [], "not on B's stream");
          assert.ok(aAll.length >= 5 && bAll.length >= 5, "the streams did carry events");
          assert.deepEqual(anonAll, [], "the anon key's stream without taskId gets nothing");
          assert.deepEqual(anonOnA, [], "the anon key naming A's task gets nothing");
          assert.ok(
            anonNamed.length >= 5 && anonNamed.every((e) => e.taskId === anonTask),
            `the anon key naming its task gets that task's events: ${anonNamed.length}`,
          );
        },
      );

      await t.step(
        "even with ALLOW_PRIVATE_NETWORK, a callbackUrl to the cloud metadata address is 400",
        async () => {
          expectError(
            await call(`${p.api}/tasks`, {
              token: tokenA,
              body: {
                imageUrl: `${fixtures.url}/images/nikon_d70.jpg`,
                callbackUrl: "http://169.254.169.254/latest/meta-data",
              },
            }),
            400,
            "invalid_request",
            /^callbackUrl: /,
          );
        },
      );
    } finally {
      await p.close();
      await fixtures.close();
    }
  },
});

Deno.test({
  name:
    "security: private addresses and rate limit (ALLOW_PRIVATE_NETWORK=false, RATE_LIMIT_BURST=3)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const fixtures = startFixtureServer();
    const p = await startTestPlatform({
      ALLOW_PRIVATE_NETWORK: "false",
      RATE_LIMIT_BURST: "3",
      RATE_LIMIT_PER_MINUTE: "1",
    });
    const port = new URL(fixtures.url).port;
    const post = async (token: string, body: unknown, path = "/tasks") =>
      await call(`${p.api}${path}`, { token, body });
    try {
      // ---- 6. Private addresses ------------------------------------------------------------

      await t.step(
        "POST /tasks rejects a callbackUrl to a private, loopback, link-local or metadata address with 400",
        async () => {
          const urls = [
            "http://127.0.0.1/",
            "http://localhost/",
            "http://10.0.0.1/",
            "http://169.254.169.254/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.1:8080/hook",
            "http://0.0.0.0/",
            "http://192.168.1.1/",
            "http://172.16.0.1/",
            "http://100.64.0.1/",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://[64:ff9b::7f00:1]/",
            "http://localhost./",
            "http://api.localhost/",
            "http://metadata.google.internal/",
            "https://LOCALHOST:8443/",
          ];
          for (const callbackUrl of urls) {
            // A fresh user each time, so the rate limit cannot be what answers.
            const r = await post(await p.userToken(), {
              imageUrl: "https://example.com/a.jpg",
              callbackUrl,
            });
            expectError(r, 400, "invalid_request", /^callbackUrl: must not point to/, callbackUrl);
          }
          const batch = await post(await p.userToken(), {
            tasks: [
              { imageUrl: "https://example.com/a.jpg", callbackUrl: "https://example.com/hook" },
              { imageUrl: "https://example.com/b.jpg", callbackUrl: "http://10.1.2.3/hook" },
            ],
          }, "/tasks/batch");
          expectError(batch, 400, "invalid_request", /^tasks\.1\.callbackUrl: /);
        },
      );

      await t.step(
        "an imageUrl on loopback fails the task with blocked_address and is never fetched",
        async () => {
          const token = await p.userToken();
          const paths = ["/images/sony_d700.jpg", "/images/nikon_e950.jpg", "/images/x.jpg"];
          const urls = [
            `http://127.0.0.1:${port}${paths[0]}`,
            `http://localhost:${port}${paths[1]}`,
            `http://2130706433:${port}${paths[2]}`,
          ];
          const created = await post(
            token,
            { tasks: urls.map((imageUrl) => ({ imageUrl })) },
            "/tasks/batch",
          );
          assert.equal(created.status, 202, created.text);
          for (const [i, c] of created.json.tasks.entries()) {
            const task = await waitForTask(p.api, token, c.taskId) as Json;
            assert.equal(task.status, "failed", `${urls[i]}: ${task.status}`);
            assert.equal(task.error.code, "blocked_address", urls[i]);
            assert.equal(task.error.stage, "download");
            assert.equal(task.image, null);
          }
          for (const path of paths) assert.equal(fixtures.hits.get(path) ?? 0, 0, path);
        },
      );

      // ---- 7. Rate limit ------------------------------------------------------------------

      await t.step(
        "the 4th POST /tasks by one user is 429 with Retry-After; another user and service_role are not limited",
        async () => {
          const imageUrl = `http://127.0.0.1:${port}/images/plain.png`;
          const userD = await p.userToken();
          for (let i = 1; i <= 3; i++) {
            const r = await post(userD, { imageUrl });
            assert.equal(r.status, 202, `request ${i}: ${r.text}`);
          }
          const fourth = await post(userD, { imageUrl });
          expectError(fourth, 429, "rate_limited");
          const retryAfter = fourth.headers.get("retry-after");
          assert.match(retryAfter ?? "", /^[1-9]\d*$/, `Retry-After: ${retryAfter}`);
          expectError(await post(userD, { imageUrl }), 429, "rate_limited");
          expectError(
            await post(userD, { tasks: [{ imageUrl }] }, "/tasks/batch"),
            429,
            "rate_limited",
          );

          const other = await post(await p.userToken(), { imageUrl });
          assert.equal(other.status, 202, `another user: ${other.text}`);
          for (let i = 1; i <= 6; i++) {
            const r = await post(p.platform.serviceRoleKey, { imageUrl });
            assert.equal(r.status, 202, `service_role request ${i}: ${r.text}`);
          }
        },
      );

      await t.step(
        "an anon-key caller cannot reset its rate limit by sending another X-Forwarded-For",
        async () => {
          // The local platform has no gateway: X-Forwarded-For is whatever the client sends, so
          // it must not pick the caller's bucket.
          const imageUrl = `http://127.0.0.1:${port}/images/plain.png`;
          const anon = (forwardedFor: string) =>
            call(`${p.api}/tasks`, {
              token: p.platform.anonKey,
              body: { imageUrl },
              headers: { "x-forwarded-for": forwardedFor },
            });
          const statuses: number[] = [];
          for (let i = 1; i <= 4; i++) statuses.push((await anon("203.0.113.7")).status);
          assert.deepEqual(statuses, [202, 202, 202, 429], "the same address is limited");
          const spoofed = await anon("203.0.113.8");
          expectError(spoofed, 429, "rate_limited");
        },
      );
    } finally {
      await p.close();
      await fixtures.close();
    }
  },
});
