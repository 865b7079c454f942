// The dashboard's chart helpers (dashboard/charts.js): what they compute from a /stats answer,
// with no DOM.
import assert from "node:assert/strict";
import { aiSpendLines, latencyRows, linePoints, queueBars } from "../../dashboard/charts.js";

Deno.test("queueBars() shows every queue for the service role, else the caller's waiting and running tasks", () => {
  assert.deepEqual(
    queueBars({
      tasks: { queued: 1 },
      queues: {
        image_download: { length: 3, oldestMsgAgeSec: 1 },
        ai_processing: { length: 0, oldestMsgAgeSec: null },
      },
    }),
    [{ label: "image_download", value: 3 }, { label: "ai_processing", value: 0 }],
  );
  assert.deepEqual(queueBars({ tasks: { queued: 4, processing: 2, completed: 9 } }), [
    { label: "queued", value: 4 },
    { label: "processing", value: 2 },
  ]);
  assert.deepEqual(queueBars({ tasks: {} }), [
    { label: "queued", value: 0 },
    { label: "processing", value: 0 },
  ]);
});

Deno.test("latencyRows() orders stages as the pipeline runs them, total last, unknown stages before it", () => {
  const l = { count: 1, p50Ms: 1, p95Ms: 2, p99Ms: 3 };
  const rows = latencyRows({ total: l, ai: l, resize: l, download: l, metadata: l });
  assert.deepEqual(rows.map(([k]) => k), ["download", "metadata", "ai", "resize", "total"]);
  assert.deepEqual(latencyRows(undefined), []);
});

Deno.test("linePoints() puts the newest sample at the right edge and scales to the maximum", () => {
  const points = linePoints([0, 5, 10], 10, 3).split(" ").map((p) => p.split(",").map(Number));
  assert.deepEqual(points.map(([x]) => x), [30, 165, 300]);
  // y grows downwards: 0 on the axis (95), the maximum at the top (10).
  assert.deepEqual(points.map(([, y]) => y), [95, 52.5, 10]);
  // Fewer samples than slots: they sit at the right, the newest at the edge.
  const two = linePoints([1, 1], 1, 60).split(" ").map((p) => Number(p.split(",")[0]));
  assert.equal(two[1], 300);
  // All zero: flat on the axis, no division by zero.
  assert.equal(linePoints([0, 0], 0, 2), "30.0,95.0 300.0,95.0");
});

Deno.test("aiSpendLines() shows calls made and saved, the newest day's tokens and cost, budget use and buckets", () => {
  assert.deepEqual(aiSpendLines({}), ["No metered AI provider: the local provider costs nothing."]);
  const lines = aiSpendLines({
    aiSpend: {
      callsMade: 11,
      callsSavedByReuse: 90,
      days: [{
        day: "2026-11-30",
        calls: 11,
        reused: 90,
        promptTokens: 1000,
        completionTokens: 650,
        totalTokens: 1650,
        usd: 0.00123,
      }],
      budget: {
        scope: "own",
        spentTokens: 1650,
        spentUsd: 0.00123,
        dailyTokens: 5000,
        dailyUsd: null,
      },
      buckets: [{
        provider: "openai",
        model: "gpt-4o-mini",
        kind: "requests",
        level: 2.7,
        capacity: 50,
        blockedUntil: null,
      }],
    },
  });
  assert.deepEqual(lines, [
    "11 provider calls, 90 saved by reuse",
    "2026-11-30: 1650 tokens, $0.0012",
    "budget (own): 1650 / 5000 tokens",
    "openai/gpt-4o-mini requests: 2 of 50",
  ]);
});
