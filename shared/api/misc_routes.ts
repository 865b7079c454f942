/**
 * @module api/misc_routes — GET /stats and GET /health.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { asCaller } from "../auth.ts";
import { allQueueMetrics, missingQueues } from "../queue.ts";
import type { ApiApp, ApiDeps } from "./context.ts";
import { errorResponses, jsonContent } from "./schemas.ts";

const StatsSchema = z.object({
  scope: z.enum(["own", "all"]),
  tasks: z.record(z.string(), z.number()),
  stages: z.record(
    z.string(),
    z.object({ count: z.number(), p50Ms: z.number(), p95Ms: z.number() }),
  ),
  /** Depths of every queue, all tenants' work together: service_role only. */
  queues: z.record(
    z.string(),
    z.object({ length: z.number(), oldestMsgAgeSec: z.number().nullable() }),
  ).optional().openapi({
    description: "Every queue's depth and oldest message; service_role only",
  }),
  ai: z.object({
    analyzed: z.number(),
    byProvider: z.record(z.string(), z.number()),
    promptTokens: z.number(),
    completionTokens: z.number(),
    totalTokens: z.number(),
  }),
}).openapi("Stats");

const statsRoute = createRoute({
  method: "get",
  path: "/stats",
  summary: "Counts by status, stage latency p50/p95, queue depths, AI usage",
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

const STAGE_EVENTS: Record<string, string> = {
  "image.downloaded": "download",
  "image.metadata_extracted": "metadata",
  "image.analyzed": "ai",
  "task.completed": "total",
};

/** Registers /stats and /health. */
export function registerMiscRoutes(app: ApiApp, deps: ApiDeps): void {
  app.openapi(statsRoute, async (c) => {
    const caller = c.get("caller");
    const [counts, latency, ai] = await asCaller(deps.db, caller, async (tx) =>
      [
        await tx.query<{ status: string; n: number }>(
          "select status, count(*)::integer as n from public.tasks group by status",
        ),
        await tx.query<{ event_type: string; n: number; p50: number; p95: number }>(
          `select event_type, count(*)::integer as n,
                percentile_cont(0.5) within group (order by (payload ->> 'durationMs')::float8) as p50,
                percentile_cont(0.95) within group (order by (payload ->> 'durationMs')::float8) as p95
           from public.events
          where event_type = any($1::text[]) and payload ? 'durationMs'
          group by event_type`,
          [Object.keys(STAGE_EVENTS)],
        ),
        await tx.query<{ provider: string; n: number; pt: number; ct: number; tt: number }>(
          `select analysis ->> 'provider' as provider, count(*)::integer as n,
                coalesce(sum((analysis -> 'usage' ->> 'promptTokens')::bigint), 0)::bigint as pt,
                coalesce(sum((analysis -> 'usage' ->> 'completionTokens')::bigint), 0)::bigint as ct,
                coalesce(sum((analysis -> 'usage' ->> 'totalTokens')::bigint), 0)::bigint as tt
           from public.images where analysis is not null
          group by analysis ->> 'provider'`,
        ),
      ] as const);
    // Queue depths count every tenant's work: only service_role sees them.
    const queues = caller.role === "service_role" ? await allQueueMetrics(deps.db) : null;
    const tasks: Record<string, number> = {
      queued: 0,
      processing: 0,
      completed: 0,
      failed: 0,
      cancelled: 0,
    };
    for (const r of counts) tasks[r.status] = r.n;
    const sum = (k: "pt" | "ct" | "tt") => ai.reduce((a, r) => a + Number(r[k]), 0);
    return c.json({
      scope: caller.role === "service_role" ? "all" as const : "own" as const,
      tasks,
      stages: Object.fromEntries(latency.map((r) => [STAGE_EVENTS[r.event_type], {
        count: r.n,
        p50Ms: Math.round(Number(r.p50)),
        p95Ms: Math.round(Number(r.p95)),
      }])),
      queues: queues === null ? undefined : Object.fromEntries(
        queues.map((q) => [q.queue, { length: q.length, oldestMsgAgeSec: q.oldestMsgAgeSec }]),
      ),
      ai: {
        analyzed: ai.reduce((a, r) => a + r.n, 0),
        byProvider: Object.fromEntries(ai.map((r) => [r.provider ?? "unknown", r.n])),
        promptTokens: sum("pt"),
        completionTokens: sum("ct"),
        totalTokens: sum("tt"),
      },
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
