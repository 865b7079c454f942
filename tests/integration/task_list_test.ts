// GET /tasks through app.request() on a real database: newest first, cursor pagination, the
// status and tag filters, and row level security (a user lists their own, the anon key lists
// nothing, service_role lists all). Also checks the plan uses tasks_owner_created_at_idx.
import assert from "node:assert/strict";
import { createApiApp } from "../../shared/api/app.ts";
import { asCaller, JwtVerifier, signJwt } from "../../shared/auth.ts";
import { DEV_JWT_SECRET } from "../../shared/config.ts";
import { silentLogger } from "../../shared/log.ts";
import { createTask, LIST_TASKS_SQL } from "../../shared/tasks.ts";
import { openTestDb } from "../_helpers/db.ts";

const secret = DEV_JWT_SECRET;
// deno-lint-ignore no-explicit-any
type Json = any;

Deno.test({
  name: "GET /tasks",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const tdb = await openTestDb();
    const db = tdb.db;
    const app = createApiApp({ db, verifier: new JwtVerifier({ secret }), log: silentLogger });
    const alice = crypto.randomUUID();
    const bob = crypto.randomUUID();
    const tokens = {
      alice: await signJwt({ role: "authenticated", sub: alice }, secret),
      bob: await signJwt({ role: "authenticated", sub: bob }, secret),
      anon: await signJwt({ role: "anon" }, secret),
      service: await signJwt({ role: "service_role" }, secret),
    };
    const get = async (path: string, token: string) => {
      const res = await app.request(`/api${path}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return { status: res.status, json: await res.json() as Json };
    };

    // Alice: 5 tasks (oldest first); the 2nd failed, the 4th completed with tags cat+dog, the
    // 5th completed with tag cat. Bob: 1 task. Anon: 1 ownerless task.
    const aliceIds: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { taskId } = await createTask(db, { imageUrl: `https://example.com/${i}.jpg` }, alice);
      aliceIds.push(taskId);
    }
    const { taskId: bobId } = await createTask(db, { imageUrl: "https://example.com/b.jpg" }, bob);
    const { taskId: anonId } = await createTask(db, { imageUrl: "https://example.com/n.jpg" });
    await db.query(
      `update public.tasks set status = 'failed', stage = null, error_code = 'http_status',
         error_message = 'Cannot download image: status 404', error_stage = 'download'
        where id = $1::uuid`,
      [aliceIds[1]],
    );
    const tagged = async (taskId: string, tags: string[]) => {
      await db.query(
        "update public.tasks set status = 'completed', stage = null where id = $1::uuid",
        [taskId],
      );
      const [image] = await db.query<{ id: string }>(
        `insert into public.images (task_id, owner, sha256, content_type, byte_size, storage_path,
           width, height, format, metadata)
         values ($1::uuid, $2::uuid, $3, 'image/jpeg', 10, 'x', 4, 3, 'jpeg',
           '{"make": "NIKON", "model": "D1", "exif": {"Big": "value"}}'::jsonb) returning id`,
        [taskId, alice, "a".repeat(64)],
      );
      for (const tag of tags) {
        await db.query(
          `insert into public.image_tags (tag, image_id, task_id, owner)
           values ($1, $2::uuid, $3::uuid, $4::uuid)`,
          [tag, image.id, taskId, alice],
        );
      }
    };
    await tagged(aliceIds[3], ["cat", "dog"]);
    await tagged(aliceIds[4], ["cat"]);
    const newestFirst = [...aliceIds].reverse();

    try {
      await t.step("GET /tasks lists the user's tasks newest first as task resources", async () => {
        const r = await get("/tasks", tokens.alice);
        assert.equal(r.status, 200, JSON.stringify(r.json));
        assert.deepEqual(r.json.tasks.map((x: Json) => x.taskId), newestFirst);
        assert.equal(r.json.nextCursor, null);
        const one = await get(`/tasks/${aliceIds[4]}`, tokens.alice);
        const listed = r.json.tasks[0];
        assert.equal(listed.image.metadata.exif, undefined, "exif left out of the list");
        assert.equal(listed.image.metadata.make, "NIKON");
        delete one.json.image.metadata.exif;
        assert.deepEqual(listed, one.json);
      });

      await t.step("GET /tasks pages with the cursor, limit ≤ 100", async () => {
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const q: string = cursor ? `&cursor=${cursor}` : "";
          const r = await get(`/tasks?limit=2${q}`, tokens.alice);
          assert.equal(r.status, 200);
          assert.ok(r.json.tasks.length <= 2);
          seen.push(...r.json.tasks.map((x: Json) => x.taskId));
          cursor = r.json.nextCursor;
          pages++;
        } while (cursor);
        assert.equal(pages, 3);
        assert.deepEqual(seen, newestFirst);
        assert.equal((await get("/tasks?limit=101", tokens.alice)).status, 400);
        assert.equal((await get("/tasks?limit=0", tokens.alice)).status, 400);
        const bad = await get("/tasks?cursor=bm9wZQ", tokens.alice);
        assert.equal(bad.status, 400);
        assert.equal(bad.json.error.code, "invalid_request");
      });

      await t.step("GET /tasks filters by status, repeated or comma-separated", async () => {
        const failed = await get("/tasks?status=failed", tokens.alice);
        assert.deepEqual(failed.json.tasks.map((x: Json) => x.taskId), [aliceIds[1]]);
        assert.equal(failed.json.tasks[0].error.code, "http_status");
        const comma = await get("/tasks?status=failed,completed", tokens.alice);
        const repeated = await get("/tasks?status=failed&status=completed", tokens.alice);
        const expected = [aliceIds[4], aliceIds[3], aliceIds[1]];
        assert.deepEqual(comma.json.tasks.map((x: Json) => x.taskId), expected);
        assert.deepEqual(repeated.json.tasks.map((x: Json) => x.taskId), expected);
        const queued = await get("/tasks?status=queued", tokens.alice);
        assert.deepEqual(queued.json.tasks.map((x: Json) => x.taskId), [aliceIds[2], aliceIds[0]]);
        const unknown = await get("/tasks?status=done", tokens.alice);
        assert.equal(unknown.status, 400);
        assert.match(unknown.json.error.message, /^status: unknown status done/);
      });

      await t.step("GET /tasks filters by tag from the tag index (every tag asked)", async () => {
        const cat = await get("/tasks?tag=Cat", tokens.alice);
        assert.deepEqual(cat.json.tasks.map((x: Json) => x.taskId), [aliceIds[4], aliceIds[3]]);
        const both = await get("/tasks?tag=cat&tag=dog", tokens.alice);
        assert.deepEqual(both.json.tasks.map((x: Json) => x.taskId), [aliceIds[3]]);
        const none = await get("/tasks?tag=cat&status=failed", tokens.alice);
        assert.deepEqual(none.json.tasks, []);
        assert.deepEqual((await get("/tasks?tag=cat", tokens.bob)).json.tasks, []);
      });

      await t.step(
        "GET /tasks: RLS — own tasks for a user, none for anon, all for service_role",
        async () => {
          const bobs = await get("/tasks", tokens.bob);
          assert.deepEqual(bobs.json.tasks.map((x: Json) => x.taskId), [bobId]);
          const anon = await get("/tasks", tokens.anon);
          assert.equal(anon.status, 200);
          assert.deepEqual(anon.json.tasks, [], "ownerless tasks are never listed");
          assert.equal((await get(`/tasks/${anonId}`, tokens.anon)).status, 200, "readable by id");
          const all = await get("/tasks?limit=100", tokens.service);
          assert.deepEqual(
            new Set(all.json.tasks.map((x: Json) => x.taskId)),
            new Set([...aliceIds, bobId, anonId]),
          );
          const res = await app.request("/api/tasks");
          assert.equal(res.status, 401);
        },
      );

      await t.step("GET /tasks is in the OpenAPI document with its query parameters", async () => {
        const doc = await (await app.request("/api/openapi.json")).json();
        const op = doc.paths["/api/tasks"].get;
        assert.deepEqual(op.parameters.map((x: Json) => x.name), [
          "status",
          "tag",
          "limit",
          "cursor",
        ]);
        assert.ok(op.responses["200"].content["application/json"].schema);
      });

      await t.step("GET /tasks for a user is planned on tasks_owner_created_at_idx", async () => {
        const caller = {
          role: "authenticated",
          userId: alice,
          claims: { role: "authenticated", sub: alice },
        } as const;
        // The page query as the api runs it, its parameters inlined (EXPLAIN takes none).
        const sql = LIST_TASKS_SQL.replace("$1::text[]", "null::text[]")
          .replace("$1::text[]", "null::text[]")
          .replaceAll("$2::text[]", "null::text[]").replaceAll("$3::bigint", "null::bigint")
          .replace("$4::uuid", "null::uuid").replace("$5::integer", "51");
        const plan = await asCaller(db, caller, async (tx) => {
          // A handful of rows would be scanned whole; the question is whether the index fits.
          await tx.query("set local enable_seqscan = off");
          const rows = await tx.query<Record<string, string>>(`explain ${sql}`);
          return rows.map((r) => Object.values(r)[0]).join("\n");
        });
        if (Deno.env.get("SHOW_PLAN")) console.log(plan);
        assert.match(plan, /tasks_owner_created_at_idx/, plan);
      });
    } finally {
      await tdb.close();
    }
  },
});
