/**
 * @module api/stream_routes — GET /events/stream: Server-Sent Events of INEvents that resume
 * from `Last-Event-ID` without loss. Row level security decides which events a caller gets.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import { asCaller } from "../auth.ts";
import { ApiError } from "../errors.ts";
import { eventFromRow, type EventRow } from "../events.ts";
import type { ApiApp, ApiDeps } from "./context.ts";
import { errorResponses } from "./schemas.ts";
import { taskIdOf } from "./task_routes.ts";

const PAGE = 500;
const HEARTBEAT_MS = 15_000;

const streamRoute = createRoute({
  method: "get",
  path: "/events/stream",
  summary: "Server-Sent Events of INEvents (id = the event's sequence number)",
  request: {
    query: z.object({
      taskId: z.string().optional().openapi({ description: "Only this task's events" }),
      lastEventId: z.string().optional().openapi({
        description: "Resume after this id (the Last-Event-ID header wins)",
      }),
    }),
  },
  responses: {
    200: { description: "text/event-stream of INEvents" },
    ...errorResponses(400, 401),
  },
});

/**
 * Reads the events after `cursor` that are safe to hand out: written by transactions older
 * than every transaction still in flight, so that nothing can later commit behind the cursor.
 */
export const STREAM_QUERY = `
  select seq, id, event_type, task_id, trace_id, source, payload, created_at
    from public.events
   where seq > $1::bigint
     and ($2::uuid is null or task_id = $2::uuid)
     and tx_id < pg_snapshot_xmin(pg_current_snapshot())
   order by seq
   limit ${PAGE}`;

function cursorOf(value: string | undefined): number {
  if (value === undefined || value === "") return 0;
  if (!/^\d{1,15}$/.test(value)) {
    throw new ApiError(400, "invalid_request", "Last-Event-ID must be a non-negative integer");
  }
  return Number(value);
}

/** Registers GET /events/stream. */
export function registerStreamRoutes(app: ApiApp, deps: ApiDeps): void {
  app.openapi(streamRoute, (c) => {
    const query = c.req.valid("query");
    const taskId = query.taskId ? taskIdOf(query.taskId) : undefined;
    let cursor = cursorOf(c.req.header("last-event-id") ?? query.lastEventId);
    const caller = c.get("caller");
    const pollMs = deps.streamPollMs ?? 500;
    return streamSSE(c, async (stream) => {
      let lastWrite = Date.now();
      while (!stream.aborted && !stream.closed) {
        const rows = await asCaller(
          deps.db,
          caller,
          (tx) => tx.query<EventRow>(STREAM_QUERY, [cursor, taskId ?? null]),
          { taskId },
        );
        for (const row of rows) {
          await stream.writeSSE({
            id: String(row.seq),
            event: row.event_type,
            data: JSON.stringify(eventFromRow(row)),
          });
          cursor = Number(row.seq);
          lastWrite = Date.now();
        }
        if (rows.length === PAGE) continue;
        if (Date.now() - lastWrite >= HEARTBEAT_MS) {
          await stream.write(": keep-alive\n\n");
          lastWrite = Date.now();
        }
        await waitForEvents(deps.eventsSignal, pollMs, c.req.raw.signal);
      }
    }, async (err, stream) => {
      deps.log.warn("event stream ended by error", { err });
      await stream.close();
    }) as unknown as Response;
  });
}

/** Resolves after `ms`, or sooner when `target` dispatches "events" or `abort` fires. */
function waitForEvents(target: EventTarget | undefined, ms: number, abort: AbortSignal) {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      target?.removeEventListener("events", done);
      abort.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    target?.addEventListener("events", done);
    abort.addEventListener("abort", done);
  });
}
