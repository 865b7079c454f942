// The platform's retry path and its OpenAI provider, end to end: a download answered 503 is
// retried through the message's visibility timeout until it succeeds or MAX_ATTEMPTS is spent,
// and AI_PROVIDER=openai captions through the real SDK against a local OpenAI-format server.
import assert from "node:assert/strict";
import { startFixtureServer } from "../_helpers/fixtures.ts";
import { startTestPlatform, waitForTask } from "../_helpers/platform.ts";
import { startFakeOpenAI } from "../_helpers/fake_openai.ts";

async function submit(api: string, token: string, imageUrl: string) {
  const res = await fetch(`${api}/tasks`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ imageUrl }),
  });
  assert.equal(res.status, 202);
  return (await res.json()).taskId as string;
}

async function eventTypes(api: string, token: string, taskId: string): Promise<string[]> {
  const res = await fetch(`${api}/tasks/${taskId}/events`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return (await res.json()).map((e: { eventType: string }) => e.eventType);
}

Deno.test({
  name: "a 503 download is retried after its backoff and completes; MAX_ATTEMPTS ends it",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const fixtures = startFixtureServer();
    const p = await startTestPlatform({ MAX_ATTEMPTS: "2" });
    try {
      const token = await p.userToken();
      const ok = await submit(p.api, token, `${fixtures.url}/flaky/1/nikon_d70.jpg`);
      const gaveUp = await submit(p.api, token, `${fixtures.url}/flaky/9/nikon_d70.jpg`);
      // While the retry waits, the task says why and when: the error and nextAttemptAt.
      let waiting: Record<string, unknown> = {};
      for (let i = 0; i < 100 && !waiting.nextAttemptAt; i++) {
        const res = await fetch(`${p.api}/tasks/${gaveUp}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        waiting = await res.json();
        if (!waiting.nextAttemptAt) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(waiting.status, "processing", JSON.stringify(waiting));
      assert.equal((waiting.error as { code: string }).code, "http_status");
      assert.ok(Date.parse(String(waiting.nextAttemptAt)) > Date.now() - 1000);
      const done = await waitForTask(p.api, token, ok, 30_000);
      assert.equal(done.status, "completed");
      assert.deepEqual(done.attempts, { download: 2, metadata: 1, ai: 1 });
      assert.equal(done.error, null, "a retry that succeeds clears the error");
      assert.equal(done.nextAttemptAt, null);
      assert.deepEqual(await eventTypes(p.api, token, ok), [
        "task.created",
        "task.retry_scheduled",
        "image.downloaded",
        "image.metadata_extracted",
        "image.analyzed",
        "task.completed",
      ]);
      const failed = await waitForTask(p.api, token, gaveUp, 30_000);
      assert.equal(failed.status, "failed");
      assert.equal((failed.error as { code: string }).code, "http_status");
      assert.deepEqual(failed.attempts, { download: 2, metadata: 0, ai: 0 });
      assert.equal(
        fixtures.hits.get("/flaky/9/nikon_d70.jpg"),
        2,
        "tried exactly MAX_ATTEMPTS times",
      );
    } finally {
      await p.close();
      await fixtures.close();
    }
  },
});

Deno.test({
  name: "AI_PROVIDER=openai analyses through the OpenAI SDK and records token usage",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const fixtures = startFixtureServer();
    const openai = startFakeOpenAI();
    const p = await startTestPlatform({
      AI_PROVIDER: "openai",
      OPENAI_API_KEY: "sk-test-key",
      OPENAI_BASE_URL: openai.baseURL,
      OPENAI_MODEL: "gpt-4o-mini",
    });
    try {
      const token = await p.userToken();
      const id = await submit(p.api, token, `${fixtures.url}/images/nikon_gps_1.jpg`);
      // deno-lint-ignore no-explicit-any
      const task = await waitForTask(p.api, token, id) as any;
      assert.equal(task.status, "completed", JSON.stringify(task.error));
      assert.equal(task.image.analysis.provider, "openai");
      assert.equal(task.image.analysis.model, "gpt-4o-mini");
      assert.ok(task.image.analysis.tags.length >= 3);
      assert.ok(task.image.analysis.usage.totalTokens > 0);
      assert.equal(openai.requests.length, 1);
      const sent = JSON.stringify(openai.requests[0].body);
      assert.match(sent, /data:image\/jpeg;base64,/);
      // AI usage comes from the analytics rollups, which follow the events within a worker run.
      let stats;
      for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
        stats = await (await fetch(`${p.api}/stats`, {
          headers: { authorization: `Bearer ${token}` },
        })).json();
        if (stats.ai.analyzed > 0) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(stats.ai.byProvider.openai, 1);
      assert.equal(stats.ai.totalTokens, task.image.analysis.usage.totalTokens);
    } finally {
      await p.close();
      await openai.close();
      await fixtures.close();
    }
  },
});
