/**
 * @module api/task_routes — POST /tasks, POST /tasks/batch, GET /tasks/:id,
 * GET /tasks (the caller's tasks, newest first), GET /tasks/:id/events, POST /tasks/:id/retry and
 * /cancel.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { asCaller } from "../auth.ts";
import { ApiError } from "../errors.ts";
import {
  cancelTask,
  createTask,
  createTasks,
  getImagePaths,
  getTask,
  listTaskEvents,
  listTasks,
  retryTask,
  TASK_STATUSES,
  taskExists,
  type TaskStatus,
  type TransitionResult,
} from "../tasks.ts";
import { blockedHostnameReason } from "../net/address_policy.ts";
import { isUuid } from "../uuid.ts";
import { normaliseTags } from "../tags.ts";
import { decodeCursor, encodeCursor } from "./tag_routes.ts";
import { rateLimitSubject, takeRateLimitTokens } from "../rate_limit.ts";
import type { Caller } from "../auth.ts";
import type { ApiApp, ApiDeps } from "./context.ts";
import {
  CreatedTaskSchema,
  errorResponses,
  EventSchema,
  jsonContent,
  NewTaskBatchSchema,
  NewTaskSchema,
  TaskIdParam,
  TaskSchema,
} from "./schemas.ts";

/**
 * Checks a task id given outside the path (e.g. `?taskId=`) is a UUID (400 otherwise) and
 * returns it lowercased; the :id path parameter is checked by its schema, {@linkcode TaskIdParam}.
 */
export function taskIdOf(id: string): string {
  if (!isUuid(id)) {
    throw new ApiError(400, "invalid_request", `Task id is not a UUID: ${String(id).slice(0, 64)}`);
  }
  return id.toLowerCase();
}

const createTaskRoute = createRoute({
  method: "post",
  path: "/tasks",
  summary: "Submit an image URL",
  request: {
    body: { content: { "application/json": { schema: NewTaskSchema } }, required: true },
    headers: z.object({
      "idempotency-key": z.string().min(1).max(255).optional().openapi({
        description:
          "Returns the first task created with this key by the same user again (422 idempotency_key_reused when the body differs); needs a signed-in user's token (400 idempotency_key_requires_user with the anon key)",
      }),
    }),
  },
  responses: {
    202: jsonContent(CreatedTaskSchema, "Task accepted"),
    ...errorResponses(400, 401, 413, 415, 422, 429),
  },
});

const createBatchRoute = createRoute({
  method: "post",
  path: "/tasks/batch",
  summary: "Submit up to 100 image URLs",
  request: {
    body: { content: { "application/json": { schema: NewTaskBatchSchema } }, required: true },
  },
  responses: {
    202: jsonContent(z.object({ tasks: z.array(CreatedTaskSchema) }), "Tasks accepted"),
    ...errorResponses(400, 401, 413, 415, 422, 429),
  },
});

const getTaskRoute = createRoute({
  method: "get",
  path: "/tasks/{id}",
  summary: "A task, with its image, metadata and analysis",
  request: { params: TaskIdParam },
  responses: { 200: jsonContent(TaskSchema, "The task"), ...errorResponses(400, 401, 404) },
});

const StatusParam = z.string().max(200);
const ListTagParam = z.string().min(1).max(256)
  // deno-lint-ignore no-control-regex -- control characters are exactly what is refused
  .regex(/^[^\u0000-\u001f\u007f]+$/, "tag must not contain control characters");

const listTasksRoute = createRoute({
  method: "get",
  path: "/tasks",
  summary: "The caller's tasks, newest first, cursor-paginated (none for the anon key)",
  request: {
    query: z.object({
      status: z.union([StatusParam, z.array(StatusParam).max(10)]).optional()
        .transform((s, ctx) => {
          const all = (s === undefined ? [] : Array.isArray(s) ? s : [s])
            .flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
          const unknown = all.find((v) => !(TASK_STATUSES as readonly string[]).includes(v));
          if (unknown !== undefined) {
            ctx.addIssue({
              code: "custom",
              message: `unknown status ${unknown.slice(0, 32)}; one of ${TASK_STATUSES.join(", ")}`,
            });
            return z.NEVER;
          }
          return [...new Set(all)] as TaskStatus[];
        })
        .openapi({
          description: `Only these statuses (repeat the parameter or separate with commas): ${
            TASK_STATUSES.join(", ")
          }`,
        }),
      tag: z.union([ListTagParam, z.array(ListTagParam).max(10)]).optional()
        .transform((t) => normaliseTags(t === undefined ? [] : Array.isArray(t) ? t : [t]))
        .openapi({
          description: "Only tasks whose image carries every tag asked (the tag index)",
        }),
      limit: z.coerce.number().int().min(1).max(100).default(50),
      cursor: z.string().max(200).optional().openapi({
        description: "nextCursor of the previous page",
      }),
    }),
  },
  responses: {
    200: jsonContent(
      z.object({
        tasks: z.array(TaskSchema).openapi({
          description: "Task resources as GET /tasks/{id} gives them, without image.metadata.exif",
        }),
        nextCursor: z.string().nullable().openapi({ description: "null on the last page" }),
      }),
      "Tasks",
    ),
    ...errorResponses(400, 401),
  },
});

const taskEventsRoute = createRoute({
  method: "get",
  path: "/tasks/{id}/events",
  summary: "A task's events, oldest first",
  request: { params: TaskIdParam },
  responses: {
    200: jsonContent(z.array(EventSchema), "The events"),
    ...errorResponses(400, 401, 404),
  },
});

const transitionRoute = (action: "retry" | "cancel", summary: string) =>
  createRoute({
    method: "post",
    path: `/tasks/{id}/${action}`,
    summary,
    request: { params: TaskIdParam },
    responses: {
      202: jsonContent(z.object({ taskId: z.uuid(), status: z.string() }), "Done"),
      ...errorResponses(400, 401, 404, 409),
    },
  });

/** Seconds a signed URL of a blob stays valid. */
export const SIGNED_URL_SECONDS = 300;

const blobRoute = (blob: "image" | "thumbnail", summary: string) =>
  createRoute({
    method: "get",
    path: `/tasks/{id}/${blob}`,
    summary,
    request: { params: TaskIdParam },
    responses: {
      302: { description: "Location: a signed URL valid for 5 minutes" },
      ...errorResponses(400, 401, 404),
    },
  });

/**
 * The client address as the nearest proxy saw it: the LAST X-Forwarded-For entry (earlier ones
 * are whatever the client sent). The local platform sets the header from the socket.
 */
function clientAddress(req: Request): string | null {
  const hops = req.headers.get("x-forwarded-for")?.split(",").map((h) => h.trim()).filter(Boolean);
  return hops?.at(-1) || req.headers.get("x-real-ip") || null;
}

/** Rejects callback URLs that point into private networks (unless ALLOW_PRIVATE_NETWORK). */
function checkCallbackUrls(deps: ApiDeps, urls: (string | undefined)[]): void {
  for (const [i, url] of urls.entries()) {
    if (!url) continue;
    const reason = blockedHostnameReason(new URL(url).hostname, {
      allowPrivateNetwork: deps.allowPrivateNetwork ?? false,
    });
    if (reason) {
      const field = urls.length > 1 ? `tasks.${i}.callbackUrl` : "callbackUrl";
      throw new ApiError(400, "invalid_request", `${field}: must not point to a ${reason} address`);
    }
  }
}

/**
 * Refuses an Idempotency-Key from an anon caller: the anon key is shared by every client of a
 * project, so a key scoped to "anon" would return one client's task to another.
 */
function checkIdempotencyScope(caller: Caller, keys: (string | undefined)[]): void {
  if (caller.role !== "anon") return;
  const i = keys.findIndex((k) => k !== undefined);
  if (i < 0) return;
  const field = keys.length > 1 ? `tasks.${i}.idempotencyKey` : "Idempotency-Key";
  throw new ApiError(
    400,
    "idempotency_key_requires_user",
    `${field}: needs a signed-in user's token; the anon key is shared by every client`,
  );
}

async function spendTokens(deps: ApiDeps, caller: Caller, req: Request, cost: number) {
  const subject = rateLimitSubject(caller, clientAddress(req));
  if (subject && deps.rateLimit) await takeRateLimitTokens(deps.db, subject, cost, deps.rateLimit);
}

/** Registers the task routes. */
export function registerTaskRoutes(app: ApiApp, deps: ApiDeps): void {
  app.openapi(createTaskRoute, async (c) => {
    const body = c.req.valid("json");
    const key = c.req.header("idempotency-key");
    const caller = c.get("caller");
    checkIdempotencyScope(caller, [key]);
    checkCallbackUrls(deps, [body.callbackUrl]);
    await spendTokens(deps, caller, c.req.raw, 1);
    const created = await asCaller(
      deps.db,
      caller,
      (tx) => createTask(tx, { ...body, idempotencyKey: key }),
    );
    const { taskId, traceId, status } = created;
    // Ids only: an image URL may carry a signed query.
    if (created.created) {
      c.get("log").info("task created", { traceId, taskId });
      deps.onQueued?.();
    }
    return c.json({ taskId, traceId, status }, 202);
  });

  app.openapi(createBatchRoute, async (c) => {
    const { tasks } = c.req.valid("json");
    checkIdempotencyScope(c.get("caller"), tasks.map((t) => t.idempotencyKey));
    checkCallbackUrls(deps, tasks.map((t) => t.callbackUrl));
    await spendTokens(deps, c.get("caller"), c.req.raw, tasks.length);
    const created = await asCaller(deps.db, c.get("caller"), (tx) => createTasks(tx, tasks));
    for (const t of created.filter((t) => t.created)) {
      c.get("log").info("task created", { traceId: t.traceId, taskId: t.taskId });
    }
    if (created.some((t) => t.created)) deps.onQueued?.();
    return c.json({
      tasks: created.map(({ taskId, traceId, status }) => ({ taskId, traceId, status })),
    }, 202);
  });

  app.openapi(listTasksRoute, async (c) => {
    const { status, tag, limit, cursor } = c.req.valid("query");
    const after = cursor === undefined ? null : decodeCursor(cursor);
    // No task is named: RLS admits the caller's own rows only (none for anon).
    const page = await asCaller(
      deps.db,
      c.get("caller"),
      (tx) => listTasks(tx, { statuses: status, tags: tag, limit, after }),
    );
    return c.json({ tasks: page.tasks, nextCursor: page.next && encodeCursor(page.next) }, 200);
  });

  app.openapi(getTaskRoute, async (c) => {
    const id = c.req.valid("param").id;
    const task = await asCaller(deps.db, c.get("caller"), (tx) => getTask(tx, id), { taskId: id });
    if (!task) throw new ApiError(404, "not_found", `Task ${id} not found`);
    return c.json(task, 200);
  });

  const signedBlob = (blob: "image" | "thumbnail", summary: string) =>
    app.openapi(blobRoute(blob, summary), async (c) => {
      const id = c.req.valid("param").id;
      const [known, paths] = await asCaller(
        deps.db,
        c.get("caller"),
        async (tx) => [await taskExists(tx, id), await getImagePaths(tx, id)] as const,
        { taskId: id },
      );
      if (!known) throw new ApiError(404, "not_found", `Task ${id} not found`);
      const path = paths?.[blob];
      if (!path || !deps.store) throw new ApiError(404, "not_found", `Task ${id} has no ${blob}`);
      return c.redirect(await deps.store.signedUrl(path, SIGNED_URL_SECONDS), 302);
    });
  signedBlob("image", "Redirects to a short-lived signed URL of the stored original");
  signedBlob("thumbnail", "Redirects to a short-lived signed URL of the camera's embedded preview");

  app.openapi(taskEventsRoute, async (c) => {
    const id = c.req.valid("param").id;
    const events = await asCaller(deps.db, c.get("caller"), async (tx) => {
      return await taskExists(tx, id) ? await listTaskEvents(tx, id) : null;
    }, { taskId: id });
    if (!events) throw new ApiError(404, "not_found", `Task ${id} not found`);
    return c.json(events, 200);
  });

  const transition = (
    action: "retry" | "cancel",
    fn: (tx: Parameters<typeof cancelTask>[0], id: string) => Promise<TransitionResult | null>,
    summary: string,
    allowed: string,
  ) =>
    app.openapi(transitionRoute(action, summary), async (c) => {
      const id = c.req.valid("param").id;
      const result = await asCaller(deps.db, c.get("caller"), (tx) => fn(tx, id), { taskId: id });
      if (!result) throw new ApiError(404, "not_found", `Task ${id} not found`);
      if (!result.changed) {
        throw new ApiError(409, "conflict", `Cannot ${action} a ${result.status} task: ${allowed}`);
      }
      // Both wrote an event (the subscribers' queues); a retry also queued its stage.
      deps.onQueued?.();
      return c.json({ taskId: id, status: result.status }, 202);
    });
  transition("retry", retryTask, "Re-run a failed task from its failed stage", "only failed tasks");
  transition("cancel", cancelTask, "Stop a task in flight", "only queued or processing tasks");
}
