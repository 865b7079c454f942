/**
 * @module dashboard/model — pure functions from the api's resources to what the page shows:
 * the progress segments of a task, its elapsed time and the rows of its trace. No DOM, no I/O.
 */

/** Used when a task names no stages (the api lists them in `attempts`). */
export const DEFAULT_STAGES = ["download", "metadata", "ai"];

/** Statuses after which nothing changes. */
export const TERMINAL = new Set(["completed", "failed", "cancelled"]);

/**
 * One segment per stage, in the api's order: "done", "active", "retrying", "failed",
 * "cancelled" or "pending".
 * @param {{status: string, stage: string | null, attempts?: Record<string, number>,
 *   nextAttemptAt?: string | null, error?: {stage: string | null} | null}} task
 * @returns {{stage: string, state: string}[]}
 */
export function progressSegments(task) {
  const stages = task.attempts && Object.keys(task.attempts).length > 0
    ? Object.keys(task.attempts)
    : DEFAULT_STAGES;
  const current = task.stage ?? task.error?.stage ?? null;
  const at = current ? stages.indexOf(current) : -1;
  return stages.map((stage, i) => {
    if (task.status === "completed") return { stage, state: "done" };
    if (task.status === "queued") return { stage, state: i === 0 ? "active" : "pending" };
    if (at < 0) return { stage, state: "pending" };
    if (i < at) return { stage, state: "done" };
    if (i > at) return { stage, state: "pending" };
    if (task.status === "failed") return { stage, state: "failed" };
    if (task.status === "cancelled") return { stage, state: "cancelled" };
    return { stage, state: task.nextAttemptAt ? "retrying" : "active" };
  });
}

/**
 * Milliseconds a task has run: to completion (or its last update once ended), else to `now`.
 * @param {{status: string, createdAt: string, updatedAt: string, completedAt?: string | null}} task
 * @param {number} now
 */
export function elapsedMs(task, now) {
  const start = Date.parse(task.createdAt);
  const end = task.completedAt
    ? Date.parse(task.completedAt)
    : TERMINAL.has(task.status)
    ? Date.parse(task.updatedAt)
    : now;
  return Math.max(0, end - start);
}

/** "850 ms", "12.3 s", "4 min 05 s". */
export function formatDuration(ms) {
  if (!Number.isFinite(ms)) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

/**
 * The trace of a task: its events oldest first, each with the time since the first event, the
 * gap since the previous one, and, for an event carrying the stage's `durationMs`, how much of
 * that gap was the stage working and how much was waiting in the queue.
 * @param {{eventId: string, eventType: string, timestamp: number,
 *   payload: Record<string, unknown>}[]} events
 */
export function traceRows(events) {
  const sorted = [...events].sort((a, b) => a.timestamp - b.timestamp);
  const first = sorted[0]?.timestamp ?? 0;
  return sorted.map((event, i) => {
    const gapMs = i === 0 ? 0 : event.timestamp - sorted[i - 1].timestamp;
    const d = event.payload?.durationMs;
    // task.completed's durationMs is the whole task's, not a stage's.
    const stageMs = typeof d === "number" && event.eventType !== "task.completed" ? d : null;
    return {
      eventId: event.eventId,
      eventType: event.eventType,
      atMs: event.timestamp - first,
      gapMs,
      stageMs,
      queueMs: stageMs === null ? null : Math.max(0, gapMs - stageMs),
      summary: summarize(event),
    };
  });
}

/** A short human line about an event's payload. */
export function summarize(event) {
  const p = event.payload ?? {};
  switch (event.eventType) {
    case "task.created":
      return String(p.imageUrl ?? "");
    case "image.downloaded":
      return `${p.contentType}, ${p.byteSize} bytes`;
    case "image.metadata_extracted":
      return `${p.width}×${p.height} ${p.format ?? ""}${
        p.make ? `, ${p.make} ${p.model ?? ""}` : ""
      }`
        .trim();
    case "image.analyzed":
      return `${p.provider}: ${Array.isArray(p.tags) ? p.tags.join(", ") : ""}`;
    case "task.failed":
      return `${p.code} at ${p.stage}: ${p.message}`;
    case "task.retry_scheduled":
      return p.manual
        ? `manual retry of ${p.stage}`
        : `${p.stage} again in ${p.delaySeconds} s (${p.code ?? "retry"})`;
    case "task.cancelled":
      return p.stage ? `during ${p.stage}` : "";
    case "task.completed":
      return `in ${formatDuration(Number(p.durationMs))}`;
    default:
      return "";
  }
}

/**
 * The role a key acts as: "authenticated" for a user's JWT (one stream of all their tasks),
 * else "anon" (the page follows the tasks it created, one by one).
 * @param {string} key
 */
export function roleOfKey(key) {
  if (!key || key.startsWith("sb_")) return "anon";
  const part = key.split(".")[1];
  if (!part) return "anon";
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const role = JSON.parse(json).role;
    return typeof role === "string" ? role : "anon";
  } catch {
    return "anon";
  }
}

/** Splits the submit box into URLs: one a line, blanks and duplicates dropped. */
export function urlsOf(text) {
  return [...new Set(text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean))];
}
