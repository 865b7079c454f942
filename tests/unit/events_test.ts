// validateEvent(): the INEvent envelope and each type's payload schema.
import assert from "node:assert/strict";
import { EVENT_TYPES, eventFromRow, validateEvent } from "../../shared/events.ts";

const base = {
  eventId: crypto.randomUUID(),
  traceId: crypto.randomUUID(),
  taskId: crypto.randomUUID(),
  timestamp: Date.now(),
  source: "api",
};

Deno.test("EVENT_TYPES are the design's, and never image.processed", () => {
  assert.deepEqual([...EVENT_TYPES].sort(), [
    "image.analyzed",
    "image.downloaded",
    "image.metadata_extracted",
    "task.cancelled",
    "task.completed",
    "task.created",
    "task.failed",
    "task.retry_scheduled",
    "task.throttled",
  ]);
});

Deno.test("validateEvent() accepts a well-formed task.failed", () => {
  const e = {
    ...base,
    eventType: "task.failed",
    payload: { stage: "download", code: "timeout", message: "slow", attempts: 5 },
  };
  assert.deepEqual(validateEvent(e), []);
});

Deno.test("validateEvent() names what is wrong", () => {
  assert.match(
    validateEvent({ ...base, eventType: "image.processed", payload: {} })[0],
    /eventType/,
  );
  assert.match(
    validateEvent({ ...base, eventId: "x", eventType: "task.created", payload: {} })[0],
    /eventId/,
  );
  const problems = validateEvent({
    ...base,
    eventType: "image.metadata_extracted",
    payload: { imageId: crypto.randomUUID(), width: -1 },
  });
  assert.ok(problems.some((p) => p.startsWith("payload.width")));
});

Deno.test("eventFromRow() maps a row to an INEvent with a Unix ms timestamp", () => {
  const created = new Date("2026-01-02T03:04:05.678Z");
  const e = eventFromRow({
    seq: 1,
    id: base.eventId,
    event_type: "task.cancelled",
    task_id: base.taskId,
    trace_id: base.traceId,
    source: "api",
    payload: { stage: null },
    created_at: created,
  });
  assert.equal(e.timestamp, created.getTime());
  assert.deepEqual(validateEvent(e), []);
});
