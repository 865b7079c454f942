/**
 * @module api/schemas — the zod schemas of the HTTP API; the OpenAPI document is made from them.
 */
import { z } from "@hono/zod-openapi";
import { type Stage, STAGE_NAMES } from "../stages.ts";
import { TASK_STATUSES } from "../tasks.ts";
import { UUID_PATTERN } from "../uuid.ts";

const httpUrl = (what: string) =>
  z.string().max(2048, `${what} is longer than 2048 characters`).refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
    } catch {
      return false;
    }
  }, `${what} must be an absolute http or https URL`)
    // Stored as the parser writes it: control characters percent-encoded, host lowercased.
    .transform((v) => new URL(v).href);

/** The body of POST /tasks. */
export const NewTaskSchema = z.object({
  imageUrl: httpUrl("imageUrl").openapi({ example: "https://example.com/photo.jpg" }),
  callbackUrl: httpUrl("callbackUrl").optional().openapi({
    description:
      "Receives task.completed, task.failed and task.cancelled as signed webhooks (Standard Webhooks); every attempt is listed by GET /tasks/{id}/deliveries",
  }),
  options: z.looseObject({
    reanalyze: z.boolean({ error: "options.reanalyze must be a boolean" }).optional().openapi({
      description:
        "Call the AI provider even when a completed analysis of the same image could be reused",
    }),
  }).optional()
    .refine(
      (o) => o === undefined || JSON.stringify(o).length <= 4096,
      "options is over 4096 bytes",
    )
    .refine(
      (o) => o === undefined || !JSON.stringify(o).includes("\\u0000"),
      "options must not contain NUL characters",
    )
    .openapi({ description: "Free-form options stored with the task (at most 4 KiB)" }),
}).strict().openapi("NewTask");

/** The body of POST /tasks/batch. */
export const NewTaskBatchSchema = z.object({
  tasks: z.array(NewTaskSchema.extend({ idempotencyKey: z.string().min(1).max(255).optional() }))
    .min(1, "tasks must hold at least 1 task")
    .max(100, "tasks holds more than 100 tasks"),
}).strict().openapi("NewTaskBatch");

const status = z.enum(TASK_STATUSES);
const stage = z.enum(STAGE_NAMES as [Stage, ...Stage[]]);

/** 202 answer of POST /tasks. */
export const CreatedTaskSchema = z.object({
  taskId: z.uuid(),
  traceId: z.uuid(),
  status,
}).openapi("CreatedTask");

/** The task resource. */
export const TaskSchema = z.object({
  taskId: z.uuid(),
  traceId: z.uuid(),
  status,
  stage: stage.nullable(),
  imageUrl: z.string(),
  callbackUrl: z.string().nullable(),
  attempts: z.record(stage, z.number().int().nonnegative()),
  error: z.object({ code: z.string(), message: z.string(), stage: stage.nullable() }).nullable()
    .openapi({
      description:
        "Why the task failed, or while a retry waits (nextAttemptAt), the error it retries",
    }),
  nextAttemptAt: z.string().nullable().openapi({ description: "When a scheduled retry is due" }),
  waiting: z.enum(["budget", "rate_limit", "reuse"]).nullable().optional().openapi({
    description:
      "Why a queued task waits without spending a try: the daily AI budget, the provider's rate limit, or another task's analysis of the same image",
  }),
  waitingUntil: z.string().nullable().optional().openapi({
    description: "When a waiting task is looked at again",
  }),
  image: z.object({
    id: z.uuid(),
    sha256: z.string(),
    contentType: z.string(),
    byteSize: z.number(),
    width: z.number().nullable(),
    height: z.number().nullable(),
    format: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    analysis: z.record(z.string(), z.unknown()).nullable(),
    thumbnail: z.object({
      sha256: z.string(),
      contentType: z.string(),
      byteSize: z.number(),
      width: z.number(),
      height: z.number(),
    }).nullable(),
  }).nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  completedAt: z.string().nullable(),
}).openapi("Task");

/** An INEvent. */
export const EventSchema = z.object({
  eventId: z.uuid(),
  eventType: z.string(),
  taskId: z.uuid().optional(),
  traceId: z.uuid(),
  timestamp: z.number(),
  source: z.string(),
  payload: z.record(z.string(), z.unknown()),
}).openapi("INEvent");

/** `{error: {code, message}}`. */
export const ErrorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string() }),
}).openapi("Error");

/** A UUID in any case ({@linkcode UUID_PATTERN}), handed on lower-cased. */
export const UuidSchema = z.string()
  .regex(UUID_PATTERN, "must be a UUID")
  .transform((v) => v.toLowerCase());

/** The :id path parameter: a task id (400 when it is not a UUID). */
export const TaskIdParam = z.object({
  id: UuidSchema.openapi({ param: { name: "id", in: "path" }, example: crypto.randomUUID() }),
});

/** An image under a tag. */
export const TaggedImageSchema = z.object({
  imageId: z.uuid(),
  taskId: z.uuid(),
  sha256: z.string(),
  contentType: z.string(),
  width: z.number().nullable(),
  height: z.number().nullable(),
  format: z.string().nullable(),
  caption: z.string().nullable(),
  tags: z.array(z.string()),
  createdAt: z.string(),
}).openapi("TaggedImage");

/** A JSON response of `schema` for the OpenAPI document. */
export const jsonContent = <T>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

/** JSON error responses for the OpenAPI document. */
export const errorResponses = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((code) => [code, {
      description: ERROR_DESCRIPTIONS[code] ?? "Error",
      content: { "application/json": { schema: ErrorSchema } },
    }]),
  );

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "Invalid request",
  401: "Missing or invalid JWT",
  403: "Not allowed for this role",
  404: "Not found",
  409: "Conflict with the task's state",
  413: "Body too large",
  415: "Body is not JSON",
  429: "Rate limited",
  503: "Database unavailable",
};
