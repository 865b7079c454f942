// The dashboard's pure parts: progress segments, the trace's gaps, the SSE parser, key roles.
import assert from "node:assert/strict";
import {
  elapsedMs,
  progressSegments,
  roleOfKey,
  traceRows,
  urlsOf,
} from "../../dashboard/model.js";
import { SseParser } from "../../dashboard/sse.js";

const attempts = { download: 1, metadata: 1, ai: 0 };
const states = (t: Parameters<typeof progressSegments>[0]) =>
  progressSegments(t).map((s) => s.state);

Deno.test("progressSegments() colours each stage by the task's state", () => {
  assert.deepEqual(states({ status: "queued", stage: "download", attempts }), [
    "active",
    "pending",
    "pending",
  ]);
  assert.deepEqual(states({ status: "processing", stage: "metadata", attempts }), [
    "done",
    "active",
    "pending",
  ]);
  assert.deepEqual(
    states({ status: "processing", stage: "download", attempts, nextAttemptAt: "x" }),
    ["retrying", "pending", "pending"],
  );
  assert.deepEqual(
    states({ status: "failed", stage: null, attempts, error: { stage: "metadata" } }),
    ["done", "failed", "pending"],
  );
  assert.deepEqual(states({ status: "completed", stage: null, attempts }), [
    "done",
    "done",
    "done",
  ]);
  assert.deepEqual(progressSegments({ status: "queued", stage: null }).map((s) => s.stage), [
    "download",
    "metadata",
    "ai",
  ]);
});

Deno.test("elapsedMs() runs to now while the task runs, to its end once ended", () => {
  const t = { createdAt: "2026-01-01T00:00:00Z", updatedAt: "2026-01-01T00:00:02Z" };
  const now = Date.parse("2026-01-01T00:00:05Z");
  assert.equal(elapsedMs({ ...t, status: "processing" }, now), 5000);
  assert.equal(elapsedMs({ ...t, status: "failed" }, now), 2000);
  assert.equal(
    elapsedMs({ ...t, status: "completed", completedAt: "2026-01-01T00:00:03Z" }, now),
    3000,
  );
});

Deno.test("traceRows() splits the gap before a stage event into stage time and queue wait", () => {
  const ev = (eventType: string, timestamp: number, payload = {}) => ({
    eventId: eventType,
    eventType,
    timestamp,
    payload,
  });
  const rows = traceRows([
    ev("image.downloaded", 1300, { durationMs: 200 }),
    ev("task.created", 1000),
    ev("task.completed", 1400, { durationMs: 400 }),
  ]);
  assert.deepEqual(rows.map((r) => r.eventType), [
    "task.created",
    "image.downloaded",
    "task.completed",
  ]);
  assert.deepEqual(rows.map((r) => [r.atMs, r.gapMs, r.stageMs, r.queueMs]), [
    [0, 0, null, null],
    [300, 300, 200, 100],
    [400, 100, null, null],
  ]);
});

Deno.test("SseParser joins chunks, skips comments and keeps the last id", () => {
  const p = new SseParser();
  assert.deepEqual(p.push(": keep-alive\n\nid: 7\nevent: task.created\nda"), []);
  assert.deepEqual(p.push('ta: {"a":1}\r\n\r\nid: 8\ndata: x\ndata: y\n\n'), [
    { id: "7", event: "task.created", data: '{"a":1}' },
    { id: "8", event: "message", data: "x\ny" },
  ]);
});

Deno.test("roleOfKey() reads a JWT's role; sb_ keys and garbage act as anon", () => {
  const jwt = (claims: object) => `x.${btoa(JSON.stringify(claims)).replace(/=+$/, "")}.y`;
  assert.equal(roleOfKey(jwt({ role: "authenticated", sub: "u" })), "authenticated");
  assert.equal(roleOfKey(jwt({ role: "anon" })), "anon");
  assert.equal(roleOfKey("sb_publishable_abc"), "anon");
  assert.equal(roleOfKey("not a key"), "anon");
  assert.deepEqual(urlsOf(" a\n\nb\r\na\n"), ["a", "b"]);
});
