/**
 * @module api/misc_routes — GET /stats and GET /health.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { asCaller } from "../auth.ts";
import { allQueueMetrics, missingQueues } from "../queue.ts";
import type { ApiApp, ApiDeps } from "./context.ts";
import { errorResponses, jsonContent } from "./schemas.ts";

const StageLatency = z.object({
  count: z.number(),
  p50Ms: z.number(),
  p95Ms: z.number(),
  p99Ms: z.number(),
}).openapi({
  description: "Nearest-rank percentiles read from a fixed log-scale histogram (within 10%)",
});

const Window = z.object({
  since: z.string().openapi({ description: "Start of the minute buckets counted" }),
  events: z.number(),
  created: z.number(),
  completed: z.number(),
  failed: z.number(),
});

const StatsSchema = z.object({
  scope: z.enum(["own", "all"]),
  /** Tasks by status, kept by a trigger on tasks: exact at once. */
  tasks: z.record(z.string(), z.number()),
  /** download, metadata, ai and total (task.completed), from the analytics rollups. */
  stages: z.record(z.string(), StageLatency),
  throughput: z.object({ lastMinute: Window, lastHour: Window }).openapi({
    description:
      "Events and task transitions in whole minute buckets: lastMinute from the start of the " +
      "minute before the current one, lastHour from 60 minutes before it",
  }),
  /** Depths of every queue, all tenants' work together: service_role only. */
  queues: z.record(
    z.string(),
    z.object({ length: z.number(), oldestMsgAgeSec: z.number().nullable() }),
  ).optional().openapi({
    description:
      "Every queue's depth and oldest message (stages and subscribers); service_role only",
  }),
  ai: z.object({
    analyzed: z.number(),
    byProvider: z.record(z.string(), z.number()),
    promptTokens: z.number(),
    completionTokens: z.number(),
    totalTokens: z.number(),
    models: z.array(z.object({
      provider: z.string(),
      model: z.string(),
      calls: z.number(),
      promptTokens: z.number(),
      completionTokens: z.number(),
      totalTokens: z.number(),
    })),
  }),
  aiSpend: z.object({
    callsMade: z.number(),
    callsSavedByReuse: z.number(),
    days: z.array(z.object({
      day: z.string(),
      calls: z.number(),
      reused: z.number(),
      promptTokens: z.number(),
      completionTokens: z.number(),
      totalTokens: z.number(),
      usd: z.number(),
    })),
    budget: z.object({
      scope: z.enum(["global", "own"]),
      spentTokens: z.number(),
      spentUsd: z.number(),
      dailyTokens: z.number().nullable(),
      dailyUsd: z.number().nullable(),
    }),
    buckets: z.array(z.object({
      provider: z.string(),
      model: z.string(),
      kind: z.enum(["requests", "tokens"]),
      level: z.number(),
      capacity: z.number(),
      blockedUntil: z.string().nullable(),
    })).nullable(),
  }).optional().openapi({
    description: "Metered AI providers, exact at once (written with each analysis): calls made " +
      "and saved by reuse, tokens and USD per UTC day (last 7), today's budget use, and the " +
      "provider buckets' levels (service_role only)",
  }),
}).openapi("Stats", {
  description: "Read from rollups the analytics-worker keeps: stages, throughput and ai follow " +
    "the events within a worker run; tasks is exact at once",
});

const statsRoute = createRoute({
  method: "get",
  path: "/stats",
  summary: "Counts by status, stage latency p50/p95/p99, throughput, queue depths, AI usage",
  responses: { 200: jsonContent(StatsSchema, "Statistics"), ...errorResponses(401) },
});

// Health is public: it says whether things are up, never how much work anyone has queued.
const HealthSchema = z.object({
  ok: z.boolean(),
  db: z.enum(["ok", "unreachable"]),
  queues: z.enum(["ok", "missing", "unknown"]),
}).openapi("Health");

const healthRoute = createRoute({
  method: "get",
  path: "/health",
  summary: "Liveness, database reachability and stage queues present (no JWT needed)",
  responses: {
    200: jsonContent(HealthSchema, "Healthy"),
    503: jsonContent(HealthSchema, "Unhealthy"),
  },
});

const TASK_STATUSES = ["queued", "processing", "completed", "failed", "cancelled"];

/** darkroom.stats()'s answer: the Stats body but for queues; bigint sums arrive as numbers. */
type StatsRow = Omit<z.infer<typeof StatsSchema>, "queues" | "aiSpend">;

/** Registers /stats and /health. */
export function registerMiscRoutes(app: ApiApp, deps: ApiDeps): void {
  app.openapi(statsRoute, async (c) => {
    const caller = c.get("caller");
    // One call, rollups only: darkroom.stats() filters by the caller's auth.uid() (every
    // owner for service_role), so no route filters by owner here.
    const [{ stats, ai_spend }] = await asCaller(
      deps.db,
      caller,
      (tx) =>
        tx.query<{ stats: StatsRow; ai_spend: z.infer<typeof StatsSchema>["aiSpend"] }>(
          "select darkroom.stats() as stats, darkroom.ai_stats(p_settings => $1::jsonb) as ai_spend",
          [JSON.stringify(deps.aiBudgets ?? {})],
        ),
    );
    // Queue depths count every tenant's work: only service_role sees them.
    const queues = caller.role === "service_role" ? await allQueueMetrics(deps.db) : null;
    const tasks: Record<string, number> = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0]));
    for (const [status, n] of Object.entries(stats.tasks)) tasks[status] = Number(n);
    return c.json({
      ...stats,
      tasks,
      aiSpend: ai_spend,
      queues: queues === null ? undefined : Object.fromEntries(
        queues.map((q) => [q.queue, { length: q.length, oldestMsgAgeSec: q.oldestMsgAgeSec }]),
      ),
    }, 200);
  });

  app.openapi(healthRoute, async (c) => {
    try {
      const missing = await missingQueues(deps.db);
      if (missing.length > 0) {
        c.get("log").warn("health check: queues missing", { queues: missing });
        return c.json({ ok: false, db: "ok" as const, queues: "missing" as const }, 503);
      }
      return c.json({ ok: true, db: "ok" as const, queues: "ok" as const }, 200);
    } catch (err) {
      c.get("log").warn("health check failed", { err });
      return c.json({ ok: false, db: "unreachable" as const, queues: "unknown" as const }, 503);
    }
  });
}
