// The dashboard in Debian's Chromium (playwright-core, no downloaded browser), served by the
// in-process platform: a submitted URL's row goes through its stages to completed with tags
// without a reload, a failed download shows its error code and Retry completes it, and the
// trace lists the task's events in order. Signed in through the page's sign-in box: live
// through Realtime (no event stream opened), a dropped Realtime socket recovers what it missed,
// the charts draw /stats, the tag search finds the completed fixture, the list pages through
// GET /tasks; the docs page renders every operation of /openapi.json. Screenshots go to
// $TEST_ARTIFACTS_DIR (default: a temporary directory, printed); with UPDATE_DOCS_SCREENSHOT=1
// the signed-in one also to docs/dashboard.png for the README.
import assert from "node:assert/strict";
import { chromium, type Locator, type Page, type WebSocketRoute } from "playwright-core";
import { startFixtureServer } from "../_helpers/fixtures.ts";
import { startTestPlatform, waitForTask } from "../_helpers/platform.ts";

/** Where screenshots go: $TEST_ARTIFACTS_DIR, else one temporary directory per run. */
let artifactsDir: string | undefined;
async function screenshot(page: Page, name: string): Promise<string> {
  artifactsDir ??= Deno.env.get("TEST_ARTIFACTS_DIR") ||
    await Deno.makeTempDir({ prefix: "darkroom-artifacts-" });
  await Deno.mkdir(artifactsDir, { recursive: true });
  const path = `${artifactsDir}/${name}`;
  await page.screenshot({ path });
  console.log(`screenshot: ${path}`);
  return path;
}

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
if (!hasChromium) {
  console.warn(`dashboard_test: ignored: ${CHROMIUM} is missing (apt-get install -y chromium)`);
}

/** The flags the machines here need (tests/README.md): no background network, no sandbox. */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const STAGE_EVENTS = [
  "task.created",
  "image.downloaded",
  "image.metadata_extracted",
  "image.analyzed",
  "task.completed",
];

/** Records every (status, segment states) a task row shows, to check it without polling. */
const RECORDER = `
  window.__rows = {};
  new MutationObserver(() => {
    for (const li of document.querySelectorAll("li.task[data-status]")) {
      const segs = [...li.querySelectorAll(".seg")].map((s) => s.dataset.stage + ":" + s.dataset.state);
      const seen = (window.__rows[li.dataset.taskId] ??= []);
      const line = li.dataset.status + " " + segs.join(",");
      if (seen.at(-1) !== line) seen.push(line);
    }
  }).observe(document, { subtree: true, childList: true, attributes: true });
`;

async function submit(page: Page, url: string): Promise<string> {
  await page.fill("#urls", url);
  await page.click("#submit-button");
  const result = page.locator(`#submit-results li[data-ok="true"]`);
  await result.waitFor({ timeout: 10_000 });
  const id = await result.getAttribute("data-task-id");
  assert.ok(id, await page.locator("#submit-results").innerText());
  return id;
}

/** An attribute of every element `locator` matches. */
function attrs(locator: Locator, name: string): Promise<string[]> {
  return locator.evaluateAll(
    (els, n) => els.map((e: { getAttribute(n: string): string | null }) => e.getAttribute(n) ?? ""),
    name,
  );
}

const row = (page: Page, id: string) => page.locator(`li.task[data-task-id="${id}"]`);

async function traceTypes(page: Page, expectedLast: string): Promise<string[]> {
  await page.locator(`#trace-events li[data-event-type="${expectedLast}"]`).waitFor();
  return await attrs(page.locator("#trace-events li"), "data-event-type");
}

Deno.test({
  name: hasChromium
    ? "dashboard: submit, live stages to completed with tags, Retry of a failure, the trace"
    : `dashboard (ignored: ${CHROMIUM} is missing)`,
  ignore: !hasChromium,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const fixtures = startFixtureServer();
    // One attempt: the flaky URL's first 503 fails the task, so only Retry can complete it.
    const p = await startTestPlatform({ MAX_ATTEMPTS: "1" });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      // launch() gives Chromium a fresh, empty --user-data-dir of its own.
      args: FLAGS.filter((f) => f !== "--headless"),
      headless: true,
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
      const pageErrors: string[] = [];
      page.on("pageerror", (err) => pageErrors.push(String(err)));
      await page.addInitScript(RECORDER);
      await page.goto(`${p.platform.url}/`);
      await page.locator("#tasks-empty").waitFor();
      // The platform filled in the anon key as the page's default.
      assert.equal(await page.inputValue("#api-key"), p.platform.anonKey);
      await page.evaluate(() => ((globalThis as unknown as { __noReload: number }).__noReload = 1));

      // A good URL: queued, through the three stages, to completed with tags.
      const good = await submit(page, `${fixtures.url}/images/nikon_gps_1.jpg`);
      await row(page, good).and(page.locator('[data-status="completed"]'))
        .waitFor({ timeout: 30_000 });
      const segs = row(page, good).locator(".seg");
      assert.deepEqual(await attrs(segs, "data-stage"), ["download", "metadata", "ai"]);
      assert.deepEqual(await attrs(segs, "data-state"), ["done", "done", "done"]);
      const seen: string[] = await page.evaluate(
        (id) => (globalThis as unknown as { __rows: Record<string, string[]> }).__rows[id],
        good,
      );
      assert.ok(seen.length >= 2 && !seen[0].startsWith("completed"), seen.join("\n"));
      assert.ok(/thumb/.test(await row(page, good).locator("img").getAttribute("class") ?? ""));
      await row(page, good).locator("img[src^='blob:']").waitFor({ timeout: 10_000 });

      await row(page, good).click();
      await page.locator("#detail .tags li").first().waitFor();
      assert.ok(await page.locator("#detail .tags li").count() >= 3);
      const detail = await page.locator("#detail").innerText();
      assert.match(detail, /NIKON/);
      assert.match(detail, /43\.46\d+, 11\.88\d+/);
      assert.match(detail, /640 × 480/);
      assert.deepEqual(await traceTypes(page, "task.completed"), STAGE_EVENTS);
      assert.match(await page.locator("#trace-events").innerText(), /queue wait/);

      // A failing URL: its error code, then Retry completes it.
      const flaky = await submit(page, `${fixtures.url}/flaky/1/nikon_d70.jpg`);
      await row(page, flaky).and(page.locator('[data-status="failed"]'))
        .waitFor({ timeout: 30_000 });
      assert.equal(await row(page, flaky).locator(".error-code").innerText(), "http_status");
      await row(page, flaky).click();
      await page.locator("#detail .error-code").waitFor();
      assert.equal(await page.locator("#detail .error-code").innerText(), "http_status");
      await page.click("#detail button.retry");
      await row(page, flaky).and(page.locator('[data-status="completed"]'))
        .waitFor({ timeout: 30_000 });
      const retried = await traceTypes(page, "task.completed");
      assert.deepEqual(retried.slice(0, 3), [
        "task.created",
        "task.failed",
        "task.retry_scheduled",
      ]);
      assert.deepEqual(retried.slice(3), STAGE_EVENTS.slice(1));

      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { __noReload: number }).__noReload),
        1,
      );
      assert.deepEqual(pageErrors, []);

      // Back to the completed task for the picture.
      await row(page, good).click();
      await page.locator(`#detail dd:text-is("${good}")`).waitFor();
      await page.locator("#detail img.full").waitFor();
      assert.doesNotMatch(await page.locator("#detail").innerText(), /null|undefined/);
      await page.locator("#trace-events li").nth(4).waitFor();
      await screenshot(page, "dashboard-anon.png");
    } finally {
      await browser.close();
      await p.close();
      await fixtures.close();
    }
  },
});

Deno.test({
  name: hasChromium
    ? "dashboard with a user's JWT: ?key= leaves the address bar, one stream shows tasks made elsewhere, many URLs at once, Cancel"
    : `dashboard with a user's JWT (ignored: ${CHROMIUM} is missing)`,
  ignore: !hasChromium,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const fixtures = startFixtureServer();
    const p = await startTestPlatform({ DOWNLOAD_TIMEOUT_MS: "60000" });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: FLAGS.filter((f) => f !== "--headless"),
      headless: true,
    });
    try {
      const token = await p.userToken();
      const page = await browser.newPage();
      const pageErrors: string[] = [];
      page.on("pageerror", (err) => pageErrors.push(String(err)));
      await page.goto(`${p.platform.url}/?key=${token}`);
      await page.locator("#live[data-state=live]").waitFor({ timeout: 10_000 });
      assert.equal(new URL(page.url()).search, "", "the key left the address bar");
      assert.equal(await page.inputValue("#api-key"), token);
      // Inside the closed Settings box: not rendered, so its text, not innerText.
      assert.equal(await page.locator("#key-role").textContent(), "acts as authenticated");

      // One URL a line: each gets its own answer.
      await page.fill(
        "#urls",
        [`${fixtures.url}/images/nikon_d70.jpg`, "ftp://example.com/x.jpg"].join("\n"),
      );
      await page.click("#submit-button");
      await page.locator("#submit-results li:nth-child(2)[data-ok]").waitFor({ timeout: 10_000 });
      assert.deepEqual(await attrs(page.locator("#submit-results li"), "data-ok"), [
        "true",
        "false",
      ]);
      assert.match(await page.locator("#submit-results li").nth(1).innerText(), /invalid_request/);
      const [good] = await attrs(page.locator("#submit-results li"), "data-task-id");

      // A task the page did not create reaches it through the user's stream.
      const res = await fetch(`${p.api}/tasks`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ imageUrl: `${fixtures.url}/images/sony_d700.jpg` }),
      });
      const elsewhere = (await res.json()).taskId as string;
      for (const id of [good, elsewhere]) {
        await row(page, id).and(page.locator('[data-status="completed"]'))
          .waitFor({ timeout: 30_000 });
      }

      // A download that stalls keeps running: Cancel ends it.
      const slow = await submit(page, `${fixtures.url}/slow`);
      await row(page, slow).and(page.locator('[data-status="processing"]'))
        .waitFor({ timeout: 10_000 });
      await row(page, slow).click();
      await page.click("#detail button.cancel");
      await row(page, slow).and(page.locator('[data-status="cancelled"]'))
        .waitFor({ timeout: 10_000 });
      assert.deepEqual(pageErrors, []);
    } finally {
      await browser.close();
      await p.close();
      await fixtures.close();
    }
  },
});

/** The signed-in user's access token, from supabase-js's saved session. */
async function sessionToken(page: Page): Promise<string> {
  const saved = await page.evaluate(() => localStorage.getItem("darkroom.auth"));
  assert.ok(saved, "a saved session");
  return JSON.parse(saved).access_token;
}

Deno.test({
  name: hasChromium
    ? "dashboard signed in: sign-in box, live through Realtime and after a drop, charts, tag search, pages of tasks, docs"
    : `dashboard signed in (ignored: ${CHROMIUM} is missing)`,
  ignore: !hasChromium,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const fixtures = startFixtureServer();
    const p = await startTestPlatform();
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: FLAGS.filter((f) => f !== "--headless"),
      headless: true,
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
      const pageErrors: string[] = [];
      page.on("pageerror", (err) => pageErrors.push(String(err)));
      const streams: string[] = [];
      page.on("request", (r) => {
        if (r.url().includes("/events/stream")) streams.push(r.url());
      });
      // Every Realtime socket goes through here, so the test can drop it and hold it down.
      const sockets: WebSocketRoute[] = [];
      let holdDown = false;
      await page.routeWebSocket(/\/realtime\/v1\/websocket/, (ws) => {
        if (holdDown) return ws.close({ code: 4000, reason: "held down by the test" });
        ws.connectToServer();
        sockets.push(ws);
      });
      await page.goto(`${p.platform.url}/`);
      const email = `dash-${crypto.randomUUID().slice(0, 8)}@example.com`;

      await t.step("sign up, sign out, a wrong password is refused, sign in", async () => {
        await page.click("#auth-summary");
        await page.fill("#auth-email", email);
        await page.fill("#auth-password", "dashboard-pass");
        await page.click("#auth-signup");
        await page.locator('#auth-box[data-signed-in="true"]').waitFor({ timeout: 10_000 });
        assert.equal(await page.locator("#auth-summary").innerText(), `Signed in: ${email}`);
        await page.click("#auth-summary");
        await page.click("#auth-signout");
        await page.locator('#auth-box[data-signed-in="false"]').waitFor();
        await page.click("#auth-summary");
        await page.fill("#auth-email", email);
        await page.fill("#auth-password", "wrong-pass");
        await page.click("#auth-signin");
        await page.locator("#auth-error:not([hidden])").waitFor();
        assert.equal(await page.locator("#auth-error").innerText(), "Invalid login credentials");
        await page.fill("#auth-password", "dashboard-pass");
        await page.click("#auth-signin");
        await page.locator('#auth-box[data-signed-in="true"]').waitFor({ timeout: 10_000 });
        await page.locator("#live[data-state=live]").waitFor({ timeout: 10_000 });
        assert.match(await page.locator("#live").innerText(), /Realtime/);
        await page.locator("#tasks-empty").waitFor();
      });

      let good = "";
      await t.step("a submitted fixture goes live to completed through Realtime", async () => {
        good = await submit(page, `${fixtures.url}/images/nikon_gps_1.jpg`);
        await row(page, good).and(page.locator('[data-status="completed"]'))
          .waitFor({ timeout: 30_000 });
        assert.deepEqual(streams, [], "no event stream: Realtime carried the updates");
      });

      await t.step(
        "a dropped Realtime socket: what happened meanwhile shows once it rejoins",
        async () => {
          const token = await sessionToken(page);
          holdDown = true;
          await sockets.at(-1)!.close({ code: 4001, reason: "dropped by the test" });
          await page.locator("#live[data-state=offline]").waitFor({ timeout: 10_000 });
          const res = await fetch(`${p.api}/tasks`, {
            method: "POST",
            headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
            body: JSON.stringify({ imageUrl: `${fixtures.url}/images/canon_powershot_s40.jpg` }),
          });
          assert.equal(res.status, 202);
          const missed = (await res.json()).taskId as string;
          await waitForTask(p.api, token, missed, 30_000);
          assert.equal(await row(page, missed).count(), 0, "not shown while the socket is down");
          holdDown = false;
          await page.locator("#live[data-state=live]").waitFor({ timeout: 20_000 });
          await row(page, missed).and(page.locator('[data-status="completed"]'))
            .waitFor({ timeout: 10_000 });
        },
      );

      await t.step("the charts draw /stats: throughput, queues, stage latency", async () => {
        await page.locator('#chart-latency rect[data-stage="download"]').first()
          .waitFor({ timeout: 30_000, state: "attached" });
        for (const stage of ["download", "metadata", "ai"]) {
          assert.ok(await page.locator(`#chart-latency rect[data-stage="${stage}"]`).count() > 0);
        }
        assert.equal(
          await page.locator('#chart-throughput polyline[data-series="completed"]').count(),
          1,
        );
        assert.deepEqual(await attrs(page.locator("#chart-queues rect.bar"), "data-label"), [
          "queued",
          "processing",
        ]);
        assert.match(await page.locator("#chart-latency .legend").innerText(), /measured/);
        assert.deepEqual(
          (await attrs(page.locator("#chart-latency rect.p95"), "data-stage")).slice(0, 3),
          ["download", "metadata", "ai"],
        );
      });

      await t.step("the tag search suggests tags and finds the completed fixture", async () => {
        const task = await (await fetch(`${p.api}/tasks/${good}`, {
          headers: { authorization: `Bearer ${await sessionToken(page)}` },
        })).json();
        const tag = task.image.analysis.tags[0] as string;
        await page.locator(`#tag-suggestions option[value="${tag}"]`)
          .waitFor({ state: "attached", timeout: 10_000 });
        await page.fill("#tag-input", "no-such-tag-anywhere");
        await page.click("#tag-form button");
        await page.locator("#tag-state", { hasText: "No image tagged" }).waitFor();
        await page.fill("#tag-input", tag);
        await page.click("#tag-form button");
        await page.locator(`#tag-results li[data-task-id="${good}"]`).waitFor({ timeout: 10_000 });
      });

      await t.step("screenshots of the signed-in dashboard", async () => {
        await row(page, good).click();
        await page.locator("#detail img.full").waitFor();
        await page.locator("#trace-events li").nth(4).waitFor();
        await screenshot(page, "dashboard.png");
        if (Deno.env.get("UPDATE_DOCS_SCREENSHOT") === "1") {
          await page.screenshot({
            path: new URL("../../docs/dashboard.png", import.meta.url).pathname,
          });
        }
      });

      await t.step("many tasks: the list loads 50 at a time, Load more gets the rest", async () => {
        const token = await sessionToken(page);
        const res = await fetch(`${p.api}/tasks/batch`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({
            tasks: Array.from({ length: 55 }, (_, i) => ({
              imageUrl: `${fixtures.url}/missing/${i}.jpg`,
            })),
          }),
        });
        assert.equal(res.status, 202);
        await res.body?.cancel();
        await page.reload();
        await page.locator("#tasks li.task").nth(49).waitFor({ timeout: 20_000 });
        assert.equal(await page.locator("#tasks li.task").count(), 50);
        assert.equal(await page.locator("#tasks-count").innerText(), "(50+)");
        await page.click("#tasks-more");
        await page.locator("#tasks li.task").nth(56).waitFor({ timeout: 10_000 });
        assert.equal(await page.locator("#tasks-count").innerText(), "(57)");
        assert.ok(await page.locator("#tasks-more").isHidden());
      });

      await t.step(
        "10,000 tasks, 200 arriving at once: one page at a time, no request per task",
        async () => {
          const token = await sessionToken(page);
          const sub =
            JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub;
          const bulk = (from: number, to: number, offsetS: number) =>
            `insert into public.tasks (owner, status, stage, image_url, created_at, completed_at)
           select $1::uuid, 'completed', null, 'https://example.com/bulk/' || g || '.jpg',
                  now() + interval '${offsetS} s' + g * interval '1 ms',
                  now() + interval '${offsetS} s' + g * interval '1 ms'
             from generate_series(${from}, ${to}) g`;
          // 9,800 straight in SQL with the triggers off (no Realtime message for each) ...
          await p.platform.db.transaction(async (tx) => {
            await tx.query("set local session_replication_role = replica");
            await tx.query(bulk(1, 9800, 0), [sub]);
          });
          const perTask: string[] = [];
          const onRequest = (r: { url(): string }) => {
            if (/\/tasks\/[0-9a-f-]{36}$/.test(new URL(r.url()).pathname)) perTask.push(r.url());
          };
          page.on("request", onRequest);
          // ... then 200 at once with them on, as if another client had made them: each reaches
          // the open page through Realtime (task.state on user:<id>).
          await p.platform.db.query(bulk(9801, 10000, 20), [sub]);
          await page.locator(`li.task .url[title="https://example.com/bulk/10000.jpg"]`)
            .waitFor({ timeout: 60_000 });
          page.off("request", onRequest);
          // Only the 200 count: the tasks of the step before may still be failing meanwhile, and
          // news of a task already listed is fetched by id, as it should be.
          const bulkIds = await p.platform.db.query<{ id: string }>(
            `select id::text from public.tasks where image_url like 'https://example.com/bulk/%'`,
          );
          const bulkSet = new Set(bulkIds.map((r) => r.id));
          const forBulk = perTask.filter((url) => bulkSet.has(url.slice(url.lastIndexOf("/") + 1)));
          assert.ok(forBulk.length < 20, `${forBulk.length} GET /tasks/:id for news of 200 tasks`);
          await page.reload();
          await page.locator("#tasks li.task").nth(49).waitFor({ timeout: 20_000 });
          assert.equal(await page.locator("#tasks li.task").count(), 50);
          assert.equal(
            await page.locator("#tasks li.task .url").first().getAttribute("title"),
            "https://example.com/bulk/10000.jpg",
          );
          await page.click("#tasks-more");
          await page.locator("#tasks li.task").nth(99).waitFor({ timeout: 10_000 });
          assert.equal(await page.locator("#tasks-count").innerText(), "(100+)");
        },
      );

      await t.step("offline shows as offline, and comes back", async () => {
        await page.context().setOffline(true);
        await page.locator("#live[data-state=offline]").waitFor({ timeout: 10_000 });
        await page.context().setOffline(false);
        await page.locator("#live[data-state=live]").waitFor({ timeout: 20_000 });
      });

      await t.step(
        "Continue anonymously: another user, who sees none of the first one's tasks",
        async () => {
          await page.click("#auth-summary");
          await page.click("#auth-signout");
          await page.locator('#auth-box[data-signed-in="false"]').waitFor();
          await page.click("#auth-summary");
          await page.click("#auth-anon");
          await page.locator('#auth-box[data-signed-in="true"]').waitFor({ timeout: 10_000 });
          assert.equal(await page.locator("#auth-summary").innerText(), "Signed in anonymously");
          await page.locator("#tasks-empty").waitFor({ timeout: 10_000 });
          assert.equal(await page.locator("#tasks li.task").count(), 0);
          const mine = await submit(page, `${fixtures.url}/images/nikon_d70.jpg`);
          await row(page, mine).and(page.locator('[data-status="completed"]'))
            .waitFor({ timeout: 30_000 });
        },
      );

      await t.step("a key the api refuses shows an error, not an empty list", async () => {
        await page.click("#auth-summary");
        await page.click("#auth-signout");
        await page.locator('#auth-box[data-signed-in="false"]').waitFor();
        await page.click("#settings-box summary");
        await page.fill("#api-key", "sb_publishable_not-this-projects-key");
        await page.click("#settings button[type=submit]");
        await page.locator("#message:not([hidden])").waitFor({ timeout: 10_000 });
        assert.match(await page.locator("#message").innerText(), /Invalid API key/);
      });

      await t.step("the docs page renders every operation of /openapi.json", async () => {
        const doc = await (await fetch(`${p.api}/openapi.json`)).json();
        const ops = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
          .flatMap(([path, item]) => Object.keys(item).map((m) => `${m} ${path}`));
        await page.goto(`${p.platform.url}/docs`);
        await page.locator("#doc-state[data-state=ok]").waitFor({ timeout: 10_000 });
        const methods = await attrs(page.locator("#doc-operations .op"), "data-method");
        const paths = await attrs(page.locator("#doc-operations .op"), "data-path");
        const shown = methods.map((m, i) => `${m} ${paths[i]}`);
        assert.deepEqual(shown.sort(), ops.sort());
        await page.locator("#schema-Task").waitFor({ state: "attached" });
        await screenshot(page, "docs.png");
      });
      assert.deepEqual(pageErrors, []);
    } finally {
      await browser.close();
      await p.close();
      await fixtures.close();
    }
  },
});

Deno.test("dashboard/supabase_js.js is what `deno task bundle:dashboard` builds from the import map's supabase-js", async () => {
  const root = new URL("../../", import.meta.url);
  const out = await Deno.makeTempFile({ suffix: ".js" });
  try {
    const task = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))).tasks[
      "bundle:dashboard"
    ] as string;
    const args = task.split(/\s+/).slice(1).map((a) => a === "dashboard/supabase_js.js" ? out : a);
    const run = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: root,
      stdout: "null",
      stderr: "piped",
    })
      .output();
    assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
    const fresh = await Deno.readTextFile(out);
    const committed = await Deno.readTextFile(new URL("dashboard/supabase_js.js", root));
    assert.ok(
      fresh === committed,
      "run `deno task bundle:dashboard` and commit dashboard/supabase_js.js",
    );
  } finally {
    await Deno.remove(out);
  }
});
