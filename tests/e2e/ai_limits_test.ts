// Provider limits and budgets, end to end: the local platform (PGlite, or PostgreSQL when
// DATABASE_URL is set) with AI_PROVIDER=openai against the local OpenAI-format server, which
// records when each call arrives. A wait for the budget or the rate limit is not a try: no
// attempt is spent, no task.retry_scheduled is published, no task fails.
import assert from "node:assert/strict";
import { startFixtureServer } from "../_helpers/fixtures.ts";
import { startTestPlatform, type TestPlatform } from "../_helpers/platform.ts";
import { startFakeOpenAI } from "../_helpers/fake_openai.ts";

const IMAGES = ["nikon_d70.jpg", "sony_d700.jpg", "plain.png", "nikon_e950.jpg"];

const PLATFORM_ENV = {
  AI_PROVIDER: "openai",
  OPENAI_API_KEY: "sk-test-key",
  OPENAI_MODEL: "gpt-4o-mini",
  RATE_LIMIT_PER_MINUTE: "100000",
  RATE_LIMIT_BURST: "10000",
  // The fake answers 120 + 30 tokens: estimated exactly, a budget of N calls is N * 150 tokens.
  AI_ESTIMATED_TOKENS: "150",
  AI_BUDGET_RECHECK_SECONDS: "1",
};

async function submitBatch(api: string, token: string, urls: string[]): Promise<string[]> {
  const res = await fetch(`${api}/tasks/batch`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ tasks: urls.map((imageUrl) => ({ imageUrl })) }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  return (await res.json()).tasks.map((t: { taskId: string }) => t.taskId);
}

/** Polls `check` every 200 ms until it returns true (or `timeoutMs`). */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function statuses(p: TestPlatform, ids: string[]) {
  const rows = await p.platform.db.query<{ status: string; n: number }>(
    `select status, count(*)::int as n from public.tasks where id = any($1::uuid[])
      group by status`,
    [ids],
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** Tries at the AI stage and task.retry_scheduled events, over the tasks. */
async function triesAndRetries(p: TestPlatform, ids: string[]) {
  const [row] = await p.platform.db.query<{ max_ai: number; retries: number }>(
    `select max(coalesce((attempts ->> 'ai')::int, 0))::int as max_ai,
            (select count(*)::int from public.events e
              where e.task_id = any($1::uuid[]) and e.event_type = 'task.retry_scheduled')
              as retries
       from public.tasks where id = any($1::uuid[])`,
    [ids],
  );
  return row;
}

Deno.test({
  name:
    "with a budget of 3 calls the 4th waits (queued, waiting: budget, one task.throttled); raising the budget resumes it",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const fixtures = startFixtureServer();
    const openai = startFakeOpenAI();
    const p = await startTestPlatform({
      ...PLATFORM_ENV,
      OPENAI_BASE_URL: openai.baseURL,
      AI_DAILY_TOKENS: String(3 * 150),
    });
    try {
      const token = await p.userToken();
      const ids = await submitBatch(
        p.api,
        token,
        IMAGES.map((f) => `${fixtures.url}/images/${f}`),
      );
      await until("3 completed and 1 waiting for the budget", async () => {
        const s = await statuses(p, ids);
        const [w] = await p.platform.db.query<{ n: number }>(
          `select count(*)::int as n from public.tasks where id = any($1::uuid[])
              and waiting = 'budget' and status = 'queued'`,
          [ids],
        );
        return s.completed === 3 && w.n === 1;
      });
      assert.equal(openai.requests.length, 3);
      // Several rechecks (every second) go by: still waiting, one event, no try spent.
      await new Promise((r) => setTimeout(r, 3_000));
      const [waiter] = await p.platform.db.query<{ id: string }>(
        "select id from public.tasks where id = any($1::uuid[]) and status <> 'completed'",
        [ids],
      );
      const res = await fetch(`${p.api}/tasks/${waiter.id}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const task = await res.json();
      assert.equal(task.status, "queued");
      assert.equal(task.waiting, "budget");
      assert.equal(task.stage, "ai");
      assert.equal(task.attempts.ai, 0, "waiting spends no try");
      assert.equal(task.error, null);
      assert.equal(openai.requests.length, 3, "call 4 was not made");
      const events = await (await fetch(`${p.api}/tasks/${waiter.id}/events`, {
        headers: { authorization: `Bearer ${token}` },
      })).json();
      const throttled = events.filter((e: { eventType: string }) =>
        e.eventType === "task.throttled"
      );
      assert.equal(throttled.length, 1, "once per wait, not per release");
      assert.equal(throttled[0].payload.reason, "budget");
      assert.equal(throttled[0].payload.budget, "global");
      assert.equal(throttled[0].payload.spentTokens, 450);

      const stats = await (await fetch(`${p.api}/stats`, {
        headers: { authorization: `Bearer ${p.platform.serviceRoleKey}` },
      })).json();
      assert.deepEqual(
        { spent: stats.aiSpend.budget.spentTokens, cap: stats.aiSpend.budget.dailyTokens },
        { spent: 450, cap: 450 },
      );

      // Raise the cap (a row of darkroom.ai_budgets wins over AI_DAILY_TOKENS): it resumes.
      await p.platform.db.query(
        "insert into darkroom.ai_budgets (scope, daily_tokens) values ('global', 600)",
      );
      await until("the 4th completed", async () => (await statuses(p, ids)).completed === 4);
      assert.equal(openai.requests.length, 4);
      assert.deepEqual(await triesAndRetries(p, ids), { max_ai: 1, retries: 0 });
    } finally {
      await p.close();
      await openai.close();
      await fixtures.close();
    }
  },
});

Deno.test({
  name:
    "with a limit of 60 requests per window, 200 tasks complete, none fails, no try spent, the server never gets more than 60 in a window",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const fixtures = startFixtureServer();
    const openai = startFakeOpenAI();
    const WINDOW_SECONDS = 4;
    const TASKS = 200;
    const p = await startTestPlatform({
      ...PLATFORM_ENV,
      OPENAI_BASE_URL: openai.baseURL,
      AI_REUSE: "off",
      AI_RPM: "60",
      AI_LIMIT_WINDOW_SECONDS: String(WINDOW_SECONDS),
      // 200 tasks waiting for the budget look again every 10 s, not every second.
      AI_BUDGET_RECHECK_SECONDS: "10",
    });
    try {
      const token = await p.userToken();
      // 4 tasks go the whole way to the AI stage, held there by a budget of 0; 196 copies of
      // them are then queued at the AI stage at once (in SQL: the stages before it are not what
      // this test measures, and on PGlite they would feed the AI stage slower than the limit).
      await p.platform.db.query(
        "insert into darkroom.ai_budgets (scope, daily_tokens) values ('global', 0)",
      );
      const real = await submitBatch(
        p.api,
        token,
        IMAGES.map((f) => `${fixtures.url}/images/${f}`),
      );
      await until("the 4 at the AI stage", async () => {
        const [r] = await p.platform.db.query<{ n: number }>(
          `select count(*)::int as n from public.tasks where id = any($1::uuid[])
              and stage = 'ai' and waiting = 'budget'`,
          [real],
        );
        return r.n === real.length;
      });
      assert.equal(openai.requests.length, 0);
      await p.platform.db.query("update darkroom.ai_budgets set daily_tokens = null");
      const copies = await p.platform.db.query<{ id: string }>(
        `with src as (
           select t.owner, t.image_url, i.sha256, i.content_type, i.byte_size, i.storage_path,
                  i.width, i.height, i.format, i.metadata
             from public.tasks t join public.images i on i.task_id = t.id
            where t.id = any($1::uuid[])
         ), copies as (
           insert into public.tasks (owner, status, stage, image_url, attempts)
           select s.owner, 'queued', 'ai', s.image_url, '{"download": 1, "metadata": 1}'
             from src s, generate_series(1, $2::int)
           returning id, trace_id, image_url
         ), images as (
           insert into public.images (task_id, owner, sha256, content_type, byte_size,
                                      storage_path, width, height, format, metadata)
           select c.id, s.owner, s.sha256, s.content_type, s.byte_size, s.storage_path, s.width,
                  s.height, s.format, s.metadata
             from copies c join src s on s.image_url = c.image_url
           returning task_id
         )
         select c.id, pgmq.send('ai_processing',
                                jsonb_build_object('taskId', c.id, 'traceId', c.trace_id))
           from copies c join images i on i.task_id = c.id`,
        [real, (TASKS - real.length) / real.length],
      );
      p.platform.scheduler.wake("ai-worker");
      const ids = [...real, ...copies.map((c) => c.id)];
      assert.equal(ids.length, TASKS);

      await until("all 200 ended", async () => {
        const s = await statuses(p, ids);
        return (s.completed ?? 0) + (s.failed ?? 0) === 200;
      }, 300_000);
      assert.deepEqual(await statuses(p, ids), { completed: 200 });
      assert.equal(openai.requests.length, 200);
      assert.deepEqual(await triesAndRetries(p, ids), { max_ai: 1, retries: 0 });

      const at = openai.requests.map((r) => r.at).sort((a, b) => a - b);
      let busiest = 0;
      for (const start of at) {
        const n = at.filter((x) => x >= start && x < start + WINDOW_SECONDS * 1000).length;
        busiest = Math.max(busiest, n);
      }
      assert.ok(busiest <= 60, `${busiest} calls arrived within ${WINDOW_SECONDS} s`);
      // The limit, not the stages before it, set the pace: some window came near it.
      assert.ok(busiest >= 30, `busiest window held only ${busiest} calls`);
    } finally {
      await p.close();
      await openai.close();
      await fixtures.close();
    }
  },
});

Deno.test({
  name:
    "a 429 from the provider drains the bucket for its Retry-After; the task waits without spending a try",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const fixtures = startFixtureServer();
    const openai = startFakeOpenAI([{
      status: 429,
      headers: { "retry-after": "2" },
      body: { error: { message: "Rate limit reached", type: "requests", code: null } },
    }]);
    const p = await startTestPlatform({ ...PLATFORM_ENV, OPENAI_BASE_URL: openai.baseURL });
    try {
      const token = await p.userToken();
      const [id] = await submitBatch(p.api, token, [`${fixtures.url}/images/nikon_d70.jpg`]);
      await until("the task waiting for the rate limit", async () => {
        const [r] = await p.platform.db.query<{ n: number }>(
          "select count(*)::int as n from public.tasks where id = $1 and waiting = 'rate_limit'",
          [id],
        );
        return r.n === 1;
      });
      const [bucket] = await p.platform.db.query<{ blocked: boolean }>(
        `select blocked_until > now() as blocked from darkroom.provider_buckets
          where provider = 'openai' and model = 'gpt-4o-mini' and kind = 'requests'`,
      );
      assert.equal(bucket.blocked, true, "the 429 blocked the model's bucket");
      assert.equal(openai.requests.length, 1, "the SDK did not retry the 429 itself");
      await until("completed", async () => (await statuses(p, [id])).completed === 1);
      assert.equal(openai.requests.length, 2);
      const waited = openai.requests[1].at - openai.requests[0].at;
      assert.ok(waited >= 1_900, `called again after ${waited} ms, before Retry-After`);
      assert.deepEqual(await triesAndRetries(p, [id]), { max_ai: 1, retries: 0 });
    } finally {
      await p.close();
      await openai.close();
      await fixtures.close();
    }
  },
});
