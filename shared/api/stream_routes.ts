/**
 * @module api/stream_routes — GET /events/stream: Server-Sent Events of INEvents that resume
 * from `Last-Event-ID` without loss. Row level security decides which events a caller gets.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import { asCaller } from "../auth.ts";
import { ApiError } from "../errors.ts";
import { settledAfter } from "../settled_cursor.ts";
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
 * Reads the events after the one whose seq is `$1` that are safe to hand out, by the settled
 * cursor (shared/settled_cursor.ts): a transaction still in flight can never commit an event
 * behind it. The SSE id stays the event's seq; its tx_id is looked up.
 */
export const STREAM_QUERY = `
  with cursor_event as (
    select coalesce((select tx_id from public.events where seq = $1::bigint), '0'::xid8) as tx_id
  )
  ${
  settledAfter({
    select: "e.seq, e.id, e.event_type, e.task_id, e.trace_id, e.source, e.payload, e.created_at",
    from: "public.events e, cursor_event c",
    alias: "e",
    tx: "c.tx_id",
    seq: "$1::bigint",
    where: "$2::uuid is null or e.task_id = $2::uuid",
    limit: PAGE,
  })
}`;

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
    const ended = deps.shutdownSignal
      ? AbortSignal.any([c.req.raw.signal, deps.shutdownSignal])
      : c.req.raw.signal;
    return streamSSE(c, async (stream) => {
      let lastWrite = Date.now();
      while (!stream.aborted && !stream.closed && !deps.shutdownSignal?.aborted) {
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
        await waitForEvents(deps.eventsSignal, pollMs, ended);
      }
    }, async (err, stream) => {
      c.get("log").warn("event stream ended by error", { err });
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
