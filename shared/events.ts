/**
 * @module events — the INEvent shape every event has, everywhere, and a zod schema for each
 * event type's payload.
 */
import { z } from "zod";
import { type Stage, STAGE_NAMES, STAGES } from "./stages.ts";

/** An event as clients, subscribers and logs see it. */
export interface INEvent<T = Record<string, unknown>> {
  /** UUID. */
  eventId: string;
  /** e.g. image.downloaded */
  eventType: string;
  taskId?: string;
  /** One per task, carried through every message, event and log line. */
  traceId: string;
  /** Unix ms. */
  timestamp: number;
  /** The function that published it: api, download-worker, metadata-worker, ai-worker, ... */
  source: string;
  payload: T;
}

const gps = z.object({ lat: z.number().min(-90).max(90), lon: z.number().min(-180).max(180) });
const stage = z.enum(STAGE_NAMES as [Stage, ...Stage[]]);

/** Payload schema of each event type. */
export const EVENT_PAYLOADS = {
  "task.created": z.object({
    imageUrl: z.string(),
    callbackUrl: z.string().optional(),
    options: z.record(z.string(), z.unknown()).optional(),
  }),
  "image.downloaded": z.object({
    imageId: z.uuid(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    contentType: z.string(),
    byteSize: z.number().int().positive(),
    durationMs: z.number().int().nonnegative(),
  }),
  "image.metadata_extracted": z.object({
    imageId: z.uuid(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    format: z.string(),
    make: z.string().nullable(),
    model: z.string().nullable(),
    takenAt: z.string().nullable(),
    orientation: z.number().int().min(1).max(8).nullable(),
    gps: gps.nullable(),
    partial: z.boolean(),
    durationMs: z.number().int().nonnegative(),
  }),
  "image.analyzed": z.object({
    imageId: z.uuid(),
    provider: z.string(),
    model: z.string(),
    caption: z.string().min(1),
    tags: z.array(z.string()).min(3).max(10),
    safety: z.record(z.string(), z.boolean()),
    usage: z.object({
      promptTokens: z.number(),
      completionTokens: z.number(),
      totalTokens: z.number(),
    }).nullable(),
    durationMs: z.number().int().nonnegative(),
    /** True when a completed analysis of the same image was reused: no provider call. */
    reused: z.boolean().optional(),
    /** The darkroom.analyses row the task's analysis is (absent for unmetered providers). */
    analysisId: z.uuid().optional(),
    /** When reused: the analysis it came from. */
    sourceAnalysisId: z.uuid().optional(),
    /** What the call cost at darkroom.ai_prices (0 when reused or unpriced). */
    costUsd: z.number().nonnegative().optional(),
    /** Per tag, what produced it: image metadata, the colour analysis, or a model. */
    tagSources: z.record(z.string(), z.enum(["metadata", "colour", "model"])).optional(),
    /** The local provider's colour reading: the pixels measured, or why none were. */
    colours: z.object({
      from: z.enum(["image", "embedded-thumbnail"]).nullable(),
      reason: z.string().nullable(),
    }).optional(),
  }),
  "task.completed": z.object({
    imageId: z.uuid(),
    status: z.literal("completed"),
    durationMs: z.number().int().nonnegative(),
  }),
  "task.failed": z.object({
    stage,
    code: z.string(),
    message: z.string(),
    attempts: z.number().int().nonnegative(),
  }),
  "task.retry_scheduled": z.object({
    stage,
    delaySeconds: z.number().int().nonnegative(),
    attempt: z.number().int().nonnegative().optional(),
    code: z.string().optional(),
    message: z.string().optional(),
    manual: z.boolean().optional(),
  }),
  "task.cancelled": z.object({ stage: stage.nullable() }),
  /** A task waits at a stage for a daily budget: published once per wait, not per release. */
  "task.throttled": z.object({
    stage,
    reason: z.enum(["budget", "rate_limit", "reuse"]),
    delaySeconds: z.number().int().positive(),
    budget: z.enum(["global", "owner"]).optional(),
    spentTokens: z.number().optional(),
    dailyTokens: z.number().nullable().optional(),
    spentUsd: z.number().optional(),
    dailyUsd: z.number().nullable().optional(),
  }),
} as const;

/**
 * Payload of a stage's completion event when EVENT_PAYLOADS has no schema of its own for it
 * (a stage recorded by darkroom.record_generic).
 */
const STAGE_EVENT_PAYLOAD = z.object({
  imageId: z.uuid(),
  durationMs: z.number().int().nonnegative(),
});

/** The event types Darkroom publishes. Never `image.processed`. */
export type EventType = keyof typeof EVENT_PAYLOADS | typeof STAGES[number]["completedEvent"];

/** All event types: the lifecycle's and every stage's completion event. */
export const EVENT_TYPES = [
  ...new Set<EventType>([
    ...Object.keys(EVENT_PAYLOADS) as EventType[],
    ...STAGES.map((s) => s.completedEvent),
  ]),
];

/** The payload schema of an event type. */
function payloadSchema(type: EventType): z.ZodType {
  return (EVENT_PAYLOADS as Record<string, z.ZodType>)[type] ?? STAGE_EVENT_PAYLOAD;
}

/** The INEvent envelope schema (payload checked separately by type). */
export const INEventSchema = z.object({
  eventId: z.uuid(),
  eventType: z.enum(EVENT_TYPES as [EventType, ...EventType[]]),
  taskId: z.uuid().optional(),
  traceId: z.uuid(),
  timestamp: z.number().int().positive(),
  source: z.string().min(1),
  payload: z.record(z.string(), z.unknown()),
});

/**
 * Validates an event: the envelope and its type's payload. Returns the list of problems, empty
 * when valid.
 */
export function validateEvent(event: unknown): string[] {
  const envelope = INEventSchema.safeParse(event);
  if (!envelope.success) {
    return envelope.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  }
  const payload = payloadSchema(envelope.data.eventType).safeParse(envelope.data.payload);
  return payload.success
    ? []
    : payload.error.issues.map((i) => `payload.${i.path.join(".")}: ${i.message}`);
}

/** A row of public.events as the database returns it. */
export interface EventRow {
  seq: number;
  id: string;
  event_type: string;
  task_id: string | null;
  trace_id: string;
  source: string;
  payload: Record<string, unknown>;
  created_at: Date | string;
}

/** Turns an events row into an INEvent. */
export function eventFromRow(row: EventRow): INEvent {
  const event: INEvent = {
    eventId: row.id,
    eventType: row.event_type,
    traceId: row.trace_id,
    timestamp: new Date(row.created_at).getTime(),
    source: row.source,
    payload: row.payload ?? {},
  };
  if (row.task_id) event.taskId = row.task_id;
  return event;
}
