// The whole pipeline on the local platform: real camera images served on loopback go in by
// URL; completed tasks come out whose metadata matches what exiftool reports, with their
// events in order. Failures end as failed tasks with the design's codes, and the platform
// keeps serving. Runs on PGlite, or on PostgreSQL when DATABASE_URL is set.
import assert from "node:assert/strict";
import { loadOracle, startFixtureServer } from "../_helpers/fixtures.ts";
import { startTestPlatform, waitForTask } from "../_helpers/platform.ts";
import { validateEvent } from "../../shared/events.ts";
import { readSse } from "../_helpers/sse.ts";

const JSON_HEADERS = (token: string) => ({
  authorization: `Bearer ${token}`,
  "content-type": "application/json",
});

Deno.test({
  name: "pipeline (local platform, end to end)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const fixtures = startFixtureServer();
    const p = await startTestPlatform();
    const token = await p.userToken();
    const submit = async (imageUrl: string) => {
      const res = await fetch(`${p.api}/tasks`, {
        method: "POST",
        headers: JSON_HEADERS(token),
        body: JSON.stringify({ imageUrl }),
      });
      assert.equal(res.status, 202, await res.clone().text());
      return await res.json() as { taskId: string; traceId: string; status: string };
    };
    try {
      const oracle = await loadOracle();

      await t.step(
        "every fixture completes with exiftool's width, height, make, model, takenAt, orientation and GPS",
        async () => {
          const submitted = await Promise.all(
            oracle.map(async (o) => ({
              o,
              created: await submit(`${fixtures.url}/images/${o.file}`),
            })),
          );
          for (const { o, created } of submitted) {
            // deno-lint-ignore no-explicit-any
            const task = await waitForTask(p.api, token, created.taskId) as any;
            assert.equal(task.status, "completed", `${o.file}: ${JSON.stringify(task.error)}`);
            const img = task.image;
            assert.equal(img.sha256, o.sha256, o.file);
            assert.equal(img.byteSize, o.byteSize, o.file);
            assert.equal(img.contentType, o.mimeType, o.file);
            assert.equal(img.width, o.width, `${o.file} width`);
            assert.equal(img.height, o.height, `${o.file} height`);
            const m = img.metadata;
            assert.equal(m.make, o.make, `${o.file} make`);
            assert.equal(m.model, o.model, `${o.file} model`);
            assert.equal(m.takenAt, o.takenAt, `${o.file} takenAt`);
            assert.equal(m.orientation, o.orientation, `${o.file} orientation`);
            if (o.gps === null) assert.equal(m.gps, null, `${o.file} gps`);
            else {
              assert.ok(Math.abs(m.gps.lat - o.gps.lat) < 1e-6, `${o.file} lat`);
              assert.ok(Math.abs(m.gps.lon - o.gps.lon) < 1e-6, `${o.file} lon`);
            }
            assert.equal(img.analysis.provider, "local");
            assert.ok(img.analysis.caption.length > 0);
            assert.ok(img.analysis.tags.length >= 3 && img.analysis.tags.length <= 10);
            assert.deepEqual(task.attempts, { download: 1, metadata: 1, ai: 1 });

            const res = await fetch(`${p.api}/tasks/${created.taskId}/events`, {
              headers: { authorization: `Bearer ${token}` },
            });
            const events = await res.json();
            assert.deepEqual(
              // deno-lint-ignore no-explicit-any
              events.map((e: any) => e.eventType),
              [
                "task.created",
                "image.downloaded",
                "image.metadata_extracted",
                "image.analyzed",
                "task.completed",
              ],
              o.file,
            );
            for (const e of events) {
              assert.deepEqual(validateEvent(e), [], `${o.file} ${e.eventType}`);
              assert.equal(e.traceId, created.traceId);
              assert.equal(e.taskId, created.taskId);
            }
          }
          const invalid = submitted.find((s) => s.o.file === "invalid_exif.jpg");
          assert.ok(invalid, "the oracle lists invalid_exif.jpg");
          // deno-lint-ignore no-explicit-any
          const task = await waitForTask(p.api, token, invalid.created.taskId) as any;
          assert.equal(task.image.metadata.partial, true, "malformed EXIF is flagged partial");
        },
      );

      await t.step(
        "GET /tasks/:id/thumbnail serves the embedded preview; a PNG has none",
        async () => {
          const headers = { authorization: `Bearer ${token}` };
          const jpeg = await submit(`${fixtures.url}/images/nikon_gps_1.jpg`);
          // deno-lint-ignore no-explicit-any
          const task = await waitForTask(p.api, token, jpeg.taskId) as any;
          assert.deepEqual(
            { w: task.image.thumbnail.width, h: task.image.thumbnail.height },
            { w: 160, h: 120 },
          );
          assert.equal(task.image.thumbnail.storagePath, undefined, "store paths stay inside");
          assert.equal(task.image.storagePath, undefined);
          const res = await fetch(`${p.api}/tasks/${jpeg.taskId}/thumbnail`, {
            headers,
            redirect: "manual",
          });
          assert.equal(res.status, 302);
          await res.body?.cancel();
          const blob = await fetch(res.headers.get("location")!);
          assert.equal(blob.status, 200);
          assert.equal(blob.headers.get("content-type"), "image/jpeg");
          const bytes = new Uint8Array(await blob.arrayBuffer());
          assert.equal(bytes.byteLength, task.image.thumbnail.byteSize);
          const png = await submit(`${fixtures.url}/images/plain.png`);
          // deno-lint-ignore no-explicit-any
          const pngTask = await waitForTask(p.api, token, png.taskId) as any;
          assert.equal(pngTask.image.thumbnail, null);
          const none = await fetch(`${p.api}/tasks/${png.taskId}/thumbnail`, { headers });
          assert.equal(none.status, 404);
          assert.equal((await none.json()).error.code, "not_found");
        },
      );

      await t.step(
        "GET /events/stream replays a task's events and resumes after Last-Event-ID",
        async () => {
          const created = await submit(`${fixtures.url}/images/canon_powershot_s40.jpg`);
          await waitForTask(p.api, token, created.taskId);
          const headers = { authorization: `Bearer ${token}` };
          const url = `${p.api}/events/stream?taskId=${created.taskId}`;
          const all = await readSse(url, headers, { count: 5, timeoutMs: 5000 });
          assert.equal(all.status, 200);
          assert.deepEqual(all.messages.map((m) => m.event), [
            "task.created",
            "image.downloaded",
            "image.metadata_extracted",
            "image.analyzed",
            "task.completed",
          ]);
          for (const m of all.messages) {
            const event = JSON.parse(m.data);
            assert.deepEqual(validateEvent(event), []);
            assert.equal(event.traceId, created.traceId);
          }
          const resumed = await readSse(url, { ...headers, "last-event-id": all.messages[1].id! }, {
            count: 3,
            timeoutMs: 5000,
          });
          assert.deepEqual(
            resumed.messages.map((m) => m.id),
            all.messages.slice(2).map((m) => m.id),
          );
          const other = await readSse(url, { authorization: `Bearer ${await p.userToken()}` }, {
            timeoutMs: 800,
          });
          assert.equal(other.status, 200);
          assert.deepEqual(other.messages, [], "another user's stream shows none of these events");
        },
      );

      await t.step("GET /events/stream delivers a new task's events live", async () => {
        const headers = { authorization: `Bearer ${token}` };
        const [start] = (await readSse(`${p.api}/events/stream`, headers, { timeoutMs: 500 }))
          .messages.slice(-1);
        const live = readSse(`${p.api}/events/stream`, {
          ...headers,
          "last-event-id": start?.id ?? "0",
        }, { count: 5, timeoutMs: 10_000 });
        const created = await submit(`${fixtures.url}/images/sony_d700.jpg`);
        const got = (await live).messages.map((m) => JSON.parse(m.data));
        assert.equal(got.length, 5);
        assert.ok(got.every((e) => e.taskId === created.taskId));
        assert.equal(got.at(-1).eventType, "task.completed");
      });

      await t.step("a download answered 404 fails the task with http_status", async () => {
        const created = await submit(`${fixtures.url}/status/404`);
        const task = await waitForTask(p.api, token, created.taskId);
        assert.equal(task.status, "failed");
        assert.deepEqual((task.error as { code: string; stage: string }).code, "http_status");
        assert.equal((task.error as { stage: string }).stage, "download");
      });

      await t.step("a web page served as image/jpeg fails with not_an_image", async () => {
        const created = await submit(`${fixtures.url}/html`);
        const task = await waitForTask(p.api, token, created.taskId);
        assert.equal(task.status, "failed");
        assert.equal((task.error as { code: string }).code, "not_an_image");
      });

      await t.step(
        "a redirect to the cloud metadata address fails with blocked_address",
        async () => {
          const created = await submit(
            `${fixtures.url}/redirect?to=${
              encodeURIComponent("http://169.254.169.254/latest/meta-data")
            }`,
          );
          const task = await waitForTask(p.api, token, created.taskId);
          assert.equal(task.status, "failed");
          assert.equal((task.error as { code: string }).code, "blocked_address");
        },
      );

      await t.step("the platform keeps serving after failures", async () => {
        const res = await fetch(`${p.api}/health`);
        const body = await res.json();
        assert.equal(res.status, 200);
        assert.deepEqual(body, { ok: true, db: "ok", queues: "ok" });
      });

      await t.step(
        "a second start on the same data applies no migration and keeps the tasks",
        async () => {
          const before = await p.platform.db.query<{ n: number }>(
            "select count(*)::integer as n from public.tasks",
          );
          const again = await p.restart();
          assert.deepEqual(again.bootstrap.applied, []);
          const after = await again.db.query<{ n: number }>(
            "select count(*)::integer as n from public.tasks",
          );
          assert.equal(after[0].n, before[0].n);
          const created = await submit(`${fixtures.url}/images/nikon_d70.jpg`);
          const task = await waitForTask(p.api, token, created.taskId);
          assert.equal(task.status, "completed");
        },
      );
    } finally {
      await p.close();
      await fixtures.close();
    }
  },
});
