// Analysis reuse by content hash, end to end: the local platform (PGlite, or PostgreSQL when
// DATABASE_URL is set) with AI_PROVIDER=openai against the local OpenAI-format server, which
// counts the calls it receives. Same image, same provider, model and prompt version: one call.
import assert from "node:assert/strict";
import { startFixtureServer } from "../_helpers/fixtures.ts";
import { startTestPlatform, type TestPlatform } from "../_helpers/platform.ts";
import { startFakeOpenAI } from "../_helpers/fake_openai.ts";

/** Ten distinct fixture images the download and metadata stages take. */
const IMAGES = [
  "canon_powershot_s40.jpg",
  "konica_minolta_z3.jpg",
  "nikon_d70.jpg",
  "nikon_e950.jpg",
  "nikon_gps_1.jpg",
  "nikon_gps_2.jpg",
  "orientation_3.jpg",
  "orientation_6.jpg",
  "plain.png",
  "sony_d700.jpg",
];

const PLATFORM_ENV = {
  AI_PROVIDER: "openai",
  OPENAI_API_KEY: "sk-test-key",
  OPENAI_MODEL: "gpt-4o-mini",
  RATE_LIMIT_PER_MINUTE: "100000",
  RATE_LIMIT_BURST: "10000",
  AI_REUSE_POLL_SECONDS: "1",
};

/** POST /tasks/batch, up to 100 at once. */
async function submitBatch(
  api: string,
  token: string,
  tasks: { imageUrl: string; options?: Record<string, unknown> }[],
): Promise<string[]> {
  const res = await fetch(`${api}/tasks/batch`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ tasks }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  return (await res.json()).tasks.map((t: { taskId: string }) => t.taskId);
}

/** Waits until none of `ids` is queued or processing; returns the tasks rows' statuses. */
async function waitAll(p: TestPlatform, ids: string[], timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const rows = await p.platform.db.query<{ status: string; n: number }>(
      `select status, count(*)::int as n from public.tasks where id = any($1::uuid[])
        group by status`,
      [ids],
    );
    const open = rows.filter((r) => r.status === "queued" || r.status === "processing");
    if (open.length === 0) return Object.fromEntries(rows.map((r) => [r.status, r.n]));
    if (Date.now() > deadline) throw new Error(`still open: ${JSON.stringify(rows)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** image.analyzed payloads of the tasks. */
async function analyzedPayloads(p: TestPlatform, ids: string[]) {
  return (await p.platform.db.query<{ payload: Record<string, unknown> }>(
    `select payload from public.events where event_type = 'image.analyzed'
        and task_id = any($1::uuid[])`,
    [ids],
  )).map((r) => r.payload);
}

Deno.test({
  name:
    "100 tasks over 10 distinct images make exactly 10 provider calls; reanalyze makes one more",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const fixtures = startFixtureServer();
    const openai = startFakeOpenAI();
    const p = await startTestPlatform({ ...PLATFORM_ENV, OPENAI_BASE_URL: openai.baseURL });
    try {
      const token = await p.userToken();
      const tasks = Array.from({ length: 100 }, (_, i) => ({
        imageUrl: `${fixtures.url}/images/${IMAGES[i % IMAGES.length]}`,
      }));
      const ids = await submitBatch(p.api, token, tasks);
      assert.deepEqual(await waitAll(p, ids), { completed: 100 });
      assert.equal(openai.requests.length, 10, "one provider call per distinct image");

      const payloads = await analyzedPayloads(p, ids);
      assert.equal(payloads.length, 100);
      const reused = payloads.filter((x) => x.reused === true);
      assert.equal(reused.length, 90);
      const fresh = payloads.filter((x) => x.reused === false);
      const freshIds = new Set(fresh.map((x) => x.analysisId));
      for (const r of reused) {
        assert.ok(freshIds.has(r.sourceAnalysisId), "the source is one of the 10 calls");
        assert.equal(r.costUsd, 0);
        assert.deepEqual(r.usage, { promptTokens: 0, completionTokens: 0, totalTokens: 0 });
      }
      assert.ok(fresh.every((x) => (x.costUsd as number) > 0), "gpt-4o-mini is priced");

      // options.reanalyze forces a fresh call.
      const [again] = await submitBatch(p.api, token, [{
        imageUrl: `${fixtures.url}/images/${IMAGES[0]}`,
        options: { reanalyze: true },
      }]);
      assert.deepEqual(await waitAll(p, [again]), { completed: 1 });
      assert.equal(openai.requests.length, 11);
      const [payload] = await analyzedPayloads(p, [again]);
      assert.equal(payload.reused, false);

      // Another owner does not reuse this owner's analyses (AI_REUSE=owner).
      const other = await p.userToken();
      const [stranger] = await submitBatch(p.api, other, [{
        imageUrl: `${fixtures.url}/images/${IMAGES[1]}`,
      }]);
      assert.deepEqual(await waitAll(p, [stranger]), { completed: 1 });
      assert.equal(openai.requests.length, 12);

      // /stats shows the calls made and saved, for this owner.
      const stats = await (await fetch(`${p.api}/stats`, {
        headers: { authorization: `Bearer ${token}` },
      })).json();
      assert.equal(stats.aiSpend.callsMade, 11);
      assert.equal(stats.aiSpend.callsSavedByReuse, 90);
      assert.equal(stats.aiSpend.days[0].totalTokens, 11 * 150);
      assert.equal(stats.aiSpend.buckets, null, "bucket levels are for service_role");
      const all = await (await fetch(`${p.api}/stats`, {
        headers: { authorization: `Bearer ${p.platform.serviceRoleKey}` },
      })).json();
      assert.equal(all.aiSpend.callsMade, 12);
      assert.ok(all.aiSpend.buckets.some((b: { kind: string }) => b.kind === "requests"));
    } finally {
      await p.close();
      await openai.close();
      await fixtures.close();
    }
  },
});

Deno.test({
  name: "20 concurrent tasks of one image make 1 provider call, without spending a try",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const fixtures = startFixtureServer();
    const openai = startFakeOpenAI();
    // The one call takes a while: the others reach the AI stage meanwhile and wait for it.
    openai.enqueue({ delayMs: 1500 });
    const p = await startTestPlatform({ ...PLATFORM_ENV, OPENAI_BASE_URL: openai.baseURL });
    try {
      const token = await p.userToken();
      const ids = await submitBatch(
        p.api,
        token,
        Array.from({ length: 20 }, () => ({ imageUrl: `${fixtures.url}/images/nikon_d70.jpg` })),
      );
      assert.deepEqual(await waitAll(p, ids), { completed: 20 });
      assert.equal(openai.requests.length, 1);
      const rows = await p.platform.db.query<{ ai: number; retried: number }>(
        `select (attempts ->> 'ai')::int as ai,
                (select count(*)::int from public.events e
                  where e.task_id = t.id and e.event_type = 'task.retry_scheduled') as retried
           from public.tasks t where t.id = any($1::uuid[])`,
        [ids],
      );
      assert.ok(rows.every((r) => r.ai === 1 && r.retried === 0), JSON.stringify(rows));
    } finally {
      await p.close();
      await openai.close();
      await fixtures.close();
    }
  },
});
