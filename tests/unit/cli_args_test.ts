// The CLI's pure parts: argument parsing, the key's role, progress bars and the summary table.
import assert from "node:assert/strict";
import { DEFAULT_URL, parseSubmitArgs, roleOfKey, UsageError } from "../../cli/args.ts";
import type { Task } from "../../cli/client.ts";
import {
  bar,
  cameraOf,
  formatBytes,
  labelOf,
  progressLines,
  summaryTable,
} from "../../cli/render.ts";

Deno.test("parseSubmitArgs() takes flags over the environment, and the local default URL", () => {
  const env = { DARKROOM_URL: "https://x.supabase.co/", DARKROOM_KEY: "k-env" };
  assert.deepEqual(parseSubmitArgs(["a.jpg"], env), {
    inputs: ["a.jpg"],
    url: "https://x.supabase.co",
    key: "k-env",
    json: false,
    poll: false,
    timeoutSeconds: 600,
  });
  const o = parseSubmitArgs(["--url", "http://h:1", "--key", "k", "--json", "a", "b"], env)!;
  assert.equal(o.url, "http://h:1");
  assert.equal(o.key, "k");
  assert.equal(o.json, true);
  assert.deepEqual(o.inputs, ["a", "b"]);
  assert.equal(parseSubmitArgs(["a"], { DARKROOM_KEY: "k" })!.url, DEFAULT_URL);
  assert.equal(parseSubmitArgs(["--help"], {}), null);
});

Deno.test("parseSubmitArgs() refuses no input, no key, a bad URL or an unknown flag", () => {
  assert.throws(() => parseSubmitArgs([], { DARKROOM_KEY: "k" }), UsageError);
  assert.throws(() => parseSubmitArgs(["a"], {}), /No key/);
  assert.throws(() => parseSubmitArgs(["--url", "ftp://x", "a"], { DARKROOM_KEY: "k" }), /--url/);
  assert.throws(() => parseSubmitArgs(["--nope", "a"], { DARKROOM_KEY: "k" }), UsageError);
  assert.throws(() => parseSubmitArgs(["--timeout", "0", "a"], { DARKROOM_KEY: "k" }), /timeout/);
});

Deno.test("roleOfKey() reads new keys by prefix and a JWT by its role claim", () => {
  const jwt = (p: object) => `x.${btoa(JSON.stringify(p)).replace(/=+$/, "")}.y`;
  assert.equal(roleOfKey("sb_publishable_abc"), "anon");
  assert.equal(roleOfKey("sb_secret_abc"), "service_role");
  assert.equal(roleOfKey(jwt({ role: "authenticated", sub: "u" })), "authenticated");
  assert.equal(roleOfKey(jwt({ role: "anon" })), "anon");
  assert.equal(roleOfKey("garbage"), "unknown");
});

const task = (over: Partial<Task>): Task => ({
  taskId: "t",
  status: "completed",
  stage: null,
  imageUrl: "http://127.0.0.1:1/0/my%20photo.jpg",
  error: null,
  image: {
    byteSize: 2048,
    width: 4,
    height: 3,
    metadata: { make: "NIKON CORPORATION", model: "NIKON D70" },
    analysis: { tags: ["cat", "dog"] },
  },
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:02.000Z",
  completedAt: "2026-01-01T00:00:01.500Z",
  ...over,
});

Deno.test("summaryTable() lists status, duration, size, camera and tags or the error", () => {
  const table = summaryTable([
    task({}),
    task({
      imageUrl: "https://example.com/status/404",
      status: "failed",
      image: null,
      error: {
        code: "http_status",
        message: "Cannot download image: status 404",
        stage: "download",
      },
      completedAt: null,
    }),
  ]).split("\n");
  assert.match(table[0], /^IMAGE\s+STATUS\s+DURATION\s+SIZE\s+CAMERA\s+TAGS \/ ERROR$/);
  assert.match(table[1], /^my photo\.jpg\s+completed\s+1\.5s\s+2\.0 KB\s+NIKON D70\s+cat, dog$/);
  assert.match(table[2], /^404\s+failed\s+2\.0s\s+-\s+-\s+http_status: Cannot download/);
});

Deno.test("render helpers: bars, labels, sizes, cameras", () => {
  assert.equal(bar(0.5, 4), "[##--]");
  assert.equal(bar(2, 2), "[##]");
  assert.equal(labelOf("https://example.com/"), "example.com");
  assert.equal(formatBytes(5 * 1024 * 1024), "5.0 MB");
  assert.equal(cameraOf(task({ image: null })), "-");
  assert.equal(
    cameraOf(task({ image: { ...task({}).image!, metadata: { make: "Canon", model: "EOS 5D" } } })),
    "Canon EOS 5D",
  );
  const lines = progressLines([
    { label: "a.jpg", fraction: 1, state: "completed" },
    { label: "b.jpg", fraction: 0, state: "queued" },
  ]);
  assert.deepEqual(lines.at(-1), "all   [##########----------] 1/2 done");
});
