// The tag index: the tag-indexer-worker keeps public.image_tags from image.analyzed (through the
// fan-out), and GET /images?tag= / GET /tags answer from it under the caller's RLS. Tasks go
// through the real stage transitions; the worker runs through its HTTP handler. Then, on the
// local platform, a freshly analysed image is found by its tags.
import assert from "node:assert/strict";
import { createApiApp } from "../../shared/api/app.ts";
import { JwtVerifier, signJwt } from "../../shared/auth.ts";
import { DEV_JWT_SECRET, loadConfig } from "../../shared/config.ts";
import type { Queryable } from "../../shared/db.ts";
import { createTagIndexerWorker } from "../../shared/functions/tag_indexer_worker.ts";
import { silentLogger } from "../../shared/log.ts";
import { createStore } from "../../shared/providers.ts";
import { Queue } from "../../shared/queue.ts";
import { STAGES } from "../../shared/stages.ts";
import { createTask } from "../../shared/tasks.ts";
import { normaliseTag, normaliseTags } from "../../shared/tags.ts";
import { openTestDb } from "../_helpers/db.ts";
import { startFixtureServer } from "../_helpers/fixtures.ts";
import { startTestPlatform, waitForTask } from "../_helpers/platform.ts";

const secret = DEV_JWT_SECRET;
// deno-lint-ignore no-explicit-any
type Json = any;

const results = (tags: string[]): Record<string, unknown> => ({
  download: { sha256: "b".repeat(64), contentType: "image/jpeg", byteSize: 10, storagePath: "x" },
  metadata: {
    width: 4,
    height: 3,
    format: "jpeg",
    metadata: { make: null, model: null, takenAt: null, orientation: 1, gps: null, exif: {} },
    thumbnail: null,
  },
  ai: {
    analysis: {
      provider: "local",
      model: "m",
      caption: "A photo",
      tags,
      safety: { adult: false, violence: false, selfHarm: false },
      usage: null,
    },
  },
});

/** A task of `owner` driven through every stage by the real transitions; its analysis has `tags`. */
async function analysedTask(db: Queryable, owner: string, tags: string[]): Promise<string> {
  const { taskId } = await createTask(db, { imageUrl: "https://example.com/a.jpg" }, owner);
  for (const s of STAGES) {
    const [m] = await new Queue<{ taskId: string }>(db, s.queue).read(30, 1);
    assert.equal(m.message.taskId, taskId);
    await db.query(
      `select * from darkroom.begin_stage(p_stage => $1, p_msg_ids => $2::bigint[],
         p_task_ids => $3::uuid[], p_max_attempts => 5)`,
      [s.name, [m.msgId], [taskId]],
    );
    await db.query("select darkroom.complete_stage($1::uuid, $2, $3::bigint, $4::jsonb, $5)", [
      taskId,
      s.name,
      m.msgId,
      JSON.stringify(results(tags)[s.name]),
      s.worker,
    ]);
  }
  return taskId;
}

Deno.test("normaliseTag() trims, lower-cases and cuts to 64 like darkroom.normalise_tag()", async () => {
  const inputs = ["  Cat ", "DOG", "golden hour", ` ${"x".repeat(63)} y`, "   ", "Straße", "ÉTÉ"];
  const tdb = await openTestDb();
  try {
    for (const input of inputs) {
      const [{ t }] = await tdb.db.query<{ t: string }>("select darkroom.normalise_tag($1) as t", [
        input,
      ]);
      assert.equal(normaliseTag(input), t, JSON.stringify(input));
    }
  } finally {
    await tdb.close();
  }
  assert.deepEqual(normaliseTags(["Cat", " cat", "", "Dog"]), ["cat", "dog"]);
});

Deno.test({
  name: "tag index: kept from image.analyzed, GET /images?tag= pages it, GET /tags counts",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const tdb = await openTestDb();
    const db = tdb.db;
    const verifier = new JwtVerifier({ secret });
    const app = createApiApp({ db, verifier, log: silentLogger });
    const config = loadConfig({ LOG_LEVEL: "error" });
    const worker = createTagIndexerWorker({
      config,
      db,
      verifier,
      log: silentLogger,
      store: createStore(config, { publicBaseUrl: "http://127.0.0.1" }),
    });
    const service = await signJwt({ role: "service_role" }, secret);
    const runWorker = async () => {
      let handled = 0;
      for (;;) {
        const res = await worker(
          new Request("http://x/", {
            method: "POST",
            headers: { authorization: `Bearer ${service}` },
          }),
        );
        const body = await res.json();
        assert.equal(res.status, 200, JSON.stringify(body));
        if (body.read === 0) return handled;
        handled += body.done;
      }
    };
    const alice = crypto.randomUUID();
    const bob = crypto.randomUUID();
    const tokens = {
      alice: await signJwt({ role: "authenticated", sub: alice }, secret),
      bob: await signJwt({ role: "authenticated", sub: bob }, secret),
      anon: await signJwt({ role: "anon" }, secret),
    };
    const get = async (path: string, token = tokens.alice) => {
      const res = await app.request(`/api${path}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return { status: res.status, json: await res.json() as Json };
    };
    try {
      const aliceTasks: string[] = [];
      await t.step("the indexer fills image_tags, normalised and deduplicated", async () => {
        for (let i = 0; i < 5; i++) {
          aliceTasks.push(
            await analysedTask(db, alice, [" Cat ", "CAT", i % 2 ? "odd" : "even", `n${i}`]),
          );
        }
        await analysedTask(db, bob, ["cat", "bob-only", "even"]);
        assert.equal(await runWorker(), 6);
        const rows = await db.query<{ tag: string }>(
          `select it.tag from public.image_tags it join public.images im on im.id = it.image_id
            where im.task_id = $1 order by it.tag`,
          [aliceTasks[0]],
        );
        assert.deepEqual(rows.map((r) => r.tag), ["cat", "even", "n0"]);
      });

      await t.step("GET /images?tag=a&tag=b gives the images having all of them", async () => {
        const r = await get("/images?tag=CAT&tag=even");
        assert.equal(r.status, 200, JSON.stringify(r.json));
        assert.deepEqual(r.json.tags, ["cat", "even"]);
        const taskIds = r.json.images.map((i: Json) => i.taskId);
        assert.deepEqual(taskIds, [aliceTasks[4], aliceTasks[2], aliceTasks[0]], "newest first");
        assert.equal(r.json.nextCursor, null);
        assert.deepEqual(r.json.images[0].tags, [" Cat ", "CAT", "even", "n4"], "the analysis");
      });

      await t.step("pages follow nextCursor without gaps or repeats", async () => {
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const q: string = `/images?tag=cat&limit=2${cursor ? `&cursor=${cursor}` : ""}`;
          const r = await get(q);
          assert.equal(r.status, 200);
          assert.ok(r.json.images.length <= 2);
          seen.push(...r.json.images.map((i: Json) => i.taskId));
          cursor = r.json.nextCursor;
          pages++;
        } while (cursor);
        assert.equal(pages, 3);
        assert.deepEqual(seen, [...aliceTasks].reverse());
        const bad = await get("/images?tag=cat&cursor=bm90LWEtY3Vyc29y");
        assert.equal(bad.status, 400);
        assert.match(bad.json.error.message, /cursor/);
      });

      await t.step("GET /tags lists the caller's tags with counts", async () => {
        const r = await get("/tags");
        assert.equal(r.status, 200);
        assert.deepEqual(r.json.tags.slice(0, 3), [
          { tag: "cat", count: 5 },
          { tag: "even", count: 3 },
          { tag: "odd", count: 2 },
        ]);
        assert.ok(!r.json.tags.some((x: Json) => x.tag === "bob-only"));
      });

      await t.step("cross-tenant reads of tags return nothing", async () => {
        const b = await get("/images?tag=n0", tokens.bob);
        assert.deepEqual(b.json.images, []);
        const bTags = await get("/tags", tokens.bob);
        assert.deepEqual(bTags.json.tags.map((x: Json) => x.tag).sort(), [
          "bob-only",
          "cat",
          "even",
        ]);
        assert.deepEqual((await get("/images?tag=cat", tokens.anon)).json.images, []);
        assert.deepEqual((await get("/tags", tokens.anon)).json.tags, []);
      });

      await t.step("a re-analysis replaces the image's old tags", async () => {
        await db.query(
          `update public.images set analysis = jsonb_set(analysis, '{tags}', '["Dog", "new"]')
            where task_id = $1`,
          [aliceTasks[0]],
        );
        await db.query(
          `select darkroom.publish_event(t, 'image.analyzed', 'ai-worker',
                    jsonb_build_object('imageId', im.id))
             from public.tasks t join public.images im on im.task_id = t.id where t.id = $1`,
          [aliceTasks[0]],
        );
        assert.equal(await runWorker(), 1);
        const r = await get("/images?tag=dog");
        assert.deepEqual(r.json.images.map((i: Json) => i.taskId), [aliceTasks[0]]);
        assert.equal((await get("/images?tag=n0")).json.images.length, 0);
      });

      await t.step("GET /images validates its tags", async () => {
        assert.equal((await get("/images")).status, 400);
        assert.equal((await get("/images?tag=%20%20")).status, 400);
        assert.equal((await get("/images?tag=a%01b")).status, 400);
      });
    } finally {
      await tdb.close();
    }
  },
});

Deno.test({
  name: "platform: a freshly analysed image is found by its tags at once",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const fixtures = startFixtureServer();
    const p = await startTestPlatform();
    try {
      const token = await p.userToken();
      const res = await fetch(`${p.api}/tasks`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ imageUrl: `${fixtures.url}/images/nikon_d70.jpg` }),
      });
      const { taskId } = await res.json();
      const task = await waitForTask(p.api, token, taskId) as Json;
      assert.equal(task.status, "completed", JSON.stringify(task.error));
      const tags: string[] = task.image.analysis.tags;
      const deadline = Date.now() + 10_000;
      let found: Json;
      do {
        const r = await fetch(`${p.api}/images?tag=${encodeURIComponent(tags[0])}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        found = await r.json();
        if (found.images?.length) break;
        await new Promise((r) => setTimeout(r, 50));
      } while (Date.now() < deadline);
      assert.deepEqual(found.images.map((i: Json) => i.taskId), [taskId]);
    } finally {
      await p.close();
      await fixtures.close();
    }
  },
});
