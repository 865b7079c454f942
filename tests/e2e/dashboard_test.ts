// The dashboard in Debian's Chromium (playwright-core, no downloaded browser), served by the
// in-process platform: a submitted URL's row goes through its stages to completed with tags
// without a reload, a failed download shows its error code and Retry completes it, and the
// trace lists the task's events in order. Writes test-artifacts/dashboard.png (and, with
// UPDATE_DOCS_SCREENSHOT=1, docs/dashboard.png for the README).
import assert from "node:assert/strict";
import { chromium, type Locator, type Page } from "playwright-core";
import { startFixtureServer } from "../_helpers/fixtures.ts";
import { startTestPlatform } from "../_helpers/platform.ts";

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
      await Deno.mkdir("test-artifacts", { recursive: true });
      await page.screenshot({ path: "test-artifacts/dashboard.png" });
      if (Deno.env.get("UPDATE_DOCS_SCREENSHOT") === "1") {
        await Deno.mkdir("docs", { recursive: true });
        await page.screenshot({ path: "docs/dashboard.png" });
      }
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
