/**
 * @module ai/admission — what the AI stage asks Postgres before calling a metered provider
 * (darkroom.admit_analysis): reuse a completed analysis of the same image, wait for the task
 * already analysing it, wait for the budget or the provider's limits, or call. And what it tells
 * Postgres after a 429 (darkroom.drain_provider_buckets).
 */
import type { Config } from "../config.ts";
import type { Queryable } from "../db.ts";
import type { Analysis } from "./types.ts";

/** The settings admit_analysis reads (p_settings), from the configuration. */
export interface AdmissionSettings {
  crossTenant: boolean;
  claimSeconds: number;
  reusePollSeconds: number;
  estimatedTokens: number;
  budgetRecheckSeconds: number;
  dailyTokens: number | null;
  dailyUsd: number | null;
  ownerDailyTokens: number | null;
  ownerDailyUsd: number | null;
  requestsPerWindow: number;
  tokensPerWindow: number;
  windowSeconds: number;
  burst: number;
}

/** The AI_* settings of {@linkcode Config} as admit_analysis takes them. */
export function admissionSettings(
  config: Pick<
    Config,
    | "AI_REUSE"
    | "AI_RPM"
    | "AI_TPM"
    | "AI_LIMIT_WINDOW_SECONDS"
    | "AI_LIMIT_BURST"
    | "AI_ESTIMATED_TOKENS"
    | "AI_DAILY_TOKENS"
    | "AI_DAILY_USD"
    | "AI_OWNER_DAILY_TOKENS"
    | "AI_OWNER_DAILY_USD"
    | "AI_BUDGET_RECHECK_SECONDS"
    | "AI_REUSE_POLL_SECONDS"
  >,
  claimSeconds: number,
): AdmissionSettings {
  return {
    crossTenant: config.AI_REUSE === "global",
    claimSeconds,
    reusePollSeconds: config.AI_REUSE_POLL_SECONDS,
    estimatedTokens: config.AI_ESTIMATED_TOKENS,
    budgetRecheckSeconds: config.AI_BUDGET_RECHECK_SECONDS,
    dailyTokens: config.AI_DAILY_TOKENS ?? null,
    dailyUsd: config.AI_DAILY_USD ?? null,
    ownerDailyTokens: config.AI_OWNER_DAILY_TOKENS ?? null,
    ownerDailyUsd: config.AI_OWNER_DAILY_USD ?? null,
    requestsPerWindow: config.AI_RPM,
    tokensPerWindow: config.AI_TPM,
    windowSeconds: config.AI_LIMIT_WINDOW_SECONDS,
    burst: config.AI_LIMIT_BURST,
  };
}

/** What the image is, for reuse: its content and the question asked of it. */
export interface AnalysisKey {
  sha256: string;
  provider: string;
  model: string;
  promptVersion: string;
}

/** admit_analysis's answer. */
export type Admission =
  | { action: "reuse"; analysisId: string; analysis: Analysis }
  | { action: "call"; estimatedTokens: number }
  | {
    action: "wait";
    reason: "budget" | "rate_limit" | "reuse";
    delaySeconds: number;
    detail: Record<string, unknown>;
  };

interface AdmitRow {
  action: "reuse" | "call" | "wait";
  reason: "budget" | "rate_limit" | "reuse" | null;
  delay_seconds: number;
  analysis_id: string | null;
  analysis: Analysis | null;
  detail: Record<string, unknown> | null;
}

/**
 * Asks whether task `taskId` may call the provider for `key` now. `force` (options.reanalyze)
 * skips reuse and the in-flight claim, never the budgets or the limits.
 */
export async function admitAnalysis(
  db: Queryable,
  taskId: string,
  key: AnalysisKey,
  force: boolean,
  settings: AdmissionSettings,
): Promise<Admission> {
  const [row] = await db.query<AdmitRow>(
    `select * from darkroom.admit_analysis(p_task_id => $1::uuid, p_sha256 => $2,
       p_provider => $3, p_model => $4, p_prompt_version => $5, p_force => $6::boolean,
       p_settings => $7::jsonb)`,
    [
      taskId,
      key.sha256,
      key.provider,
      key.model,
      key.promptVersion,
      force,
      JSON.stringify(settings),
    ],
  );
  if (row.action === "reuse") {
    return { action: "reuse", analysisId: row.analysis_id!, analysis: row.analysis! };
  }
  if (row.action === "call") {
    return { action: "call", estimatedTokens: Number(row.detail?.estimatedTokens ?? 0) };
  }
  return {
    action: "wait",
    reason: row.reason!,
    delaySeconds: Number(row.delay_seconds),
    detail: row.detail ?? {},
  };
}

/** A 429 from the provider: empties (provider, model)'s buckets for `retryAfterSeconds`. */
export async function drainProviderBuckets(
  db: Queryable,
  provider: string,
  model: string,
  retryAfterSeconds: number,
): Promise<void> {
  await db.query(
    `select darkroom.drain_provider_buckets(p_provider => $1, p_model => $2,
       p_retry_after_seconds => $3::double precision)`,
    [provider, model, retryAfterSeconds],
  );
}
