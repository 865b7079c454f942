/**
 * @module api/delivery_routes — GET /tasks/:id/deliveries (every webhook attempt for a task, to
 * its owner under RLS) and POST /deliveries/:id/redeliver (sends that event to the notifier again).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { asCaller } from "../auth.ts";
import { ApiError } from "../errors.ts";
import { taskExists } from "../tasks.ts";
import type { ApiApp, ApiDeps } from "./context.ts";
import { errorResponses, jsonContent, TaskIdParam, UuidSchema } from "./schemas.ts";

const DeliverySchema = z.object({
  deliveryId: z.uuid(),
  eventId: z.uuid(),
  eventType: z.string().nullable(),
  url: z.string(),
  attempt: z.number().int(),
  status: z.enum(["pending", "delivered", "retrying", "failed"]),
  responseStatus: z.number().int().nullable(),
  durationMs: z.number().int().nullable(),
  error: z.string().nullable(),
  nextAttemptAt: z.string().nullable(),
  createdAt: z.string(),
}).openapi("Delivery");

const listRoute = createRoute({
  method: "get",
  path: "/tasks/{id}/deliveries",
  summary: "Every webhook attempt to the task's callbackUrl, oldest first",
  request: { params: TaskIdParam },
  responses: {
    200: jsonContent(z.array(DeliverySchema), "The attempts"),
    ...errorResponses(400, 401, 404),
  },
});

const redeliverRoute = createRoute({
  method: "post",
  path: "/deliveries/{id}/redeliver",
  summary: "Send the delivery's event to the task's callbackUrl again (the task's owner only)",
  request: {
    params: z.object({
      id: UuidSchema.openapi({ param: { name: "id", in: "path" }, example: crypto.randomUUID() }),
    }),
  },
  responses: {
    202: jsonContent(
      z.object({ deliveryId: z.uuid(), eventId: z.uuid(), status: z.literal("queued") }),
      "Queued for the notifier",
    ),
    ...errorResponses(400, 401, 404),
  },
});

interface DeliveryRow {
  id: string;
  event_id: string;
  event_type: string | null;
  url: string;
  attempt: number;
  status: "pending" | "delivered" | "retrying" | "failed";
  response_status: number | null;
  duration_ms: number | null;
  error: string | null;
  next_attempt_at: Date | null;
  created_at: Date;
}

const iso = (d: Date | null) => d === null ? null : new Date(d).toISOString();

/** Registers the delivery routes. */
export function registerDeliveryRoutes(app: ApiApp, deps: ApiDeps): void {
  app.openapi(listRoute, async (c) => {
    const id = c.req.valid("param").id;
    const rows = await asCaller(deps.db, c.get("caller"), async (tx) => {
      if (!await taskExists(tx, id)) return null;
      return await tx.query<DeliveryRow>(
        `select id, event_id, event_type, url, attempt, status, response_status, duration_ms,
                error, next_attempt_at, created_at
           from public.deliveries where task_id = $1::uuid order by created_at, attempt, id`,
        [id],
      );
    }, { taskId: id });
    if (!rows) throw new ApiError(404, "not_found", `Task ${id} not found`);
    return c.json(
      rows.map((r) => ({
        deliveryId: r.id,
        eventId: r.event_id,
        eventType: r.event_type,
        url: r.url,
        attempt: r.attempt,
        status: r.status,
        responseStatus: r.response_status,
        durationMs: r.duration_ms,
        error: r.error,
        nextAttemptAt: iso(r.next_attempt_at),
        createdAt: iso(r.created_at)!,
      })),
      200,
    );
  });

  app.openapi(redeliverRoute, async (c) => {
    const id = c.req.valid("param").id;
    // RLS decides whose delivery this is: a user sees only their own tasks' rows, and no task
    // id is named, so the anon key sees none.
    const [delivery] = await asCaller(
      deps.db,
      c.get("caller"),
      (tx) =>
        tx.query<{ event_id: string }>(
          "select event_id from public.deliveries where id = $1::uuid",
          [id],
        ),
    );
    if (!delivery) throw new ApiError(404, "not_found", `Delivery ${id} not found`);
    await deps.db.query("select darkroom.redeliver(p_delivery_id => $1::uuid)", [id]);
    deps.onQueued?.();
    return c.json({ deliveryId: id, eventId: delivery.event_id, status: "queued" as const }, 202);
  });
}
