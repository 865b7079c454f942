// The whole log of a pipeline run at LOG_LEVEL=debug — a few images, one failing, the OpenAI
// provider (against a local fake) so its key is in use, signed thumbnail URLs fetched, webhooks
// signed — holds no secret, no signed-URL token and no Authorization header; every stage line
// names its trace, task, stage and message, every subscriber line its event, and every failure
// line its error code and attempt.
import assert from "node:assert/strict";
import { startFakeOpenAI } from "../_helpers/fake_openai.ts";
import { startFixtureServer } from "../_helpers/fixtures.ts";
import { startTestPlatform, waitForTask } from "../_helpers/platform.ts";
import { createLogger } from "../../shared/log.ts";

const JWT_SECRET = `hygiene-jwt-secret-${crypto.randomUUID()}`;
const OPENAI_API_KEY = `sk-hygiene-${crypto.randomUUID()}`;
const WEBHOOK_SECRET = `whsec_${btoa(crypto.randomUUID().slice(0, 24))}`;

Deno.test({
  name: "a debug-level pipeline log holds no secret, token or Authorization header",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const lines: string[] = [];
    const log = createLogger("debug", {}, (line) => lines.push(line));
    const fixtures = startFixtureServer();
    const openai = startFakeOpenAI();
    const p = await startTestPlatform({
      LOG_LEVEL: "debug",
      JWT_SECRET,
      AI_PROVIDER: "openai",
      OPENAI_API_KEY,
      OPENAI_BASE_URL: openai.baseURL,
      WEBHOOK_SECRET,
    }, log);
    try {
      const token = await p.userToken();
      const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
      const urls = [
        `${fixtures.url}/images/nikon_d70.jpg`,
        `${fixtures.url}/images/canon_powershot_s40.jpg`,
        `${fixtures.url}/status/404`, // fails: the download is refused
      ];
      const ids: string[] = [];
      for (const imageUrl of urls) {
        const res = await fetch(`${p.api}/tasks`, {
          method: "POST",
          headers,
          body: JSON.stringify({ imageUrl, callbackUrl: `${fixtures.url}/status/200` }),
        });
        assert.equal(res.status, 202, await res.clone().text());
        ids.push((await res.json()).taskId);
      }
      const tasks = [];
      for (const id of ids) tasks.push(await waitForTask(p.api, token, id, 60_000));
      assert.deepEqual(tasks.map((t) => t.status), ["completed", "completed", "failed"]);
      // Signed URLs in use: the thumbnail redirect and the blob it points to.
      for (const id of ids.slice(0, 2)) {
        const res = await fetch(`${p.api}/tasks/${id}/thumbnail`, { headers });
        await res.body?.cancel();
      }
      // Let the subscribers (webhooks, tag index) catch up.
      await new Promise((r) => setTimeout(r, 1_500));

      const all = lines.join("\n");
      assert.ok(lines.length > 5, `a debug log has lines (${lines.length})`);
      const secrets: Record<string, string> = {
        JWT_SECRET,
        "service_role key": p.platform.serviceRoleKey,
        "secret key": p.platform.secretKey,
        "user JWT": token,
        OPENAI_API_KEY,
        WEBHOOK_SECRET,
      };
      for (const [name, value] of Object.entries(secrets)) {
        assert.ok(!all.includes(value), `${name} appears in the log`);
      }
      assert.doesNotMatch(all, /sb_secret_/);
      assert.doesNotMatch(all, /[?&]token=/i, "a signed-URL token appears in the log");
      assert.doesNotMatch(all, /authorization/i, "an Authorization header appears in the log");
      assert.doesNotMatch(all, /bearer /i);

      const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      const created = parsed.filter((l) => l.msg === "task created");
      assert.deepEqual(created.map((l) => l.taskId).sort(), [...ids].sort());
      assert.ok(created.every((l) => typeof l.traceId === "string"));
      const stageLines = parsed.filter((l) => typeof l.stage === "string");
      const stagesSeen = new Set(stageLines.map((l) => l.stage));
      assert.deepEqual([...stagesSeen].sort(), ["ai", "download", "metadata"]);
      for (const l of stageLines) {
        for (const key of ["traceId", "taskId", "stage", "msgId"]) {
          assert.ok(
            l[key] !== undefined && l[key] !== null,
            `${key} missing: ${JSON.stringify(l)}`,
          );
        }
      }
      const subscriberLines = parsed.filter((l) => typeof l.subscriber === "string");
      assert.ok(subscriberLines.length > 0, "subscribers logged");
      for (const l of subscriberLines) {
        for (const key of ["traceId", "eventId", "subscriber", "msgId"]) {
          assert.ok(
            l[key] !== undefined && l[key] !== null,
            `${key} missing: ${JSON.stringify(l)}`,
          );
        }
      }
      const failures = parsed.filter((l) => /failed/.test(String(l.msg)) && l.stage);
      assert.ok(failures.length > 0, "the failing image logged its failure");
      for (const l of failures) {
        assert.ok(l.code && typeof l.attempt === "number", `code/attempt: ${JSON.stringify(l)}`);
      }
    } finally {
      await p.close();
      await openai.close();
      await fixtures.close();
    }
  },
});
