// The dashboard's chart helpers (dashboard/charts.js): what they compute from a /stats answer,
// with no DOM.
import assert from "node:assert/strict";
import { latencyRows, linePoints, queueBars } from "../../dashboard/charts.js";

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
