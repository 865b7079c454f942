// local/dashboard_route.ts: the page at /, its assets at /dashboard/<file>, the default key,
// and nothing outside dashboard/.
import assert from "node:assert/strict";
import { dashboardRoute } from "../../local/dashboard_route.ts";

const route = dashboardRoute({ defaultKey: 'key"<x' });
const get = async (path: string, method = "GET") => {
  const url = new URL(path, "http://h");
  return await route(new Request(url, { method }), url);
};

Deno.test("dashboardRoute() serves index.html at / with the default key escaped and a CSP", async () => {
  const res = (await get("/"))!;
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /text\/html/);
  assert.match(res.headers.get("content-security-policy")!, /script-src 'self'/);
  const html = await res.text();
  assert.ok(html.includes('content="key&quot;&lt;x"'), html.slice(0, 400));
});

Deno.test("dashboardRoute() serves assets, 404s unknown and traversing paths, skips others", async () => {
  const js = (await get("/dashboard/app.js"))!;
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type")!, /javascript/);
  await js.body?.cancel();
  for (const bad of ["/dashboard/nope.js", "/dashboard/../deno.json", "/dashboard/%2e%2e/x.js"]) {
    // URL parsing resolves "..": the route then answers 404 or leaves the path to others.
    const res = await get(bad);
    assert.ok(res === null || res.status === 404, bad);
    await res?.body?.cancel();
  }
  assert.equal(await get("/functions/v1/api/health"), null);
  const post = (await get("/", "POST"))!;
  assert.equal(post.status, 405);
  await post.body?.cancel();
});
