/**
 * @module config — the environment, parsed once with zod. A bad value stops start-up with a
 * message naming the variable.
 */
import { z } from "zod";

/** The development JWT secret `supabase start` uses; only a default for local runs. */
export const DEV_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";

const bool = z.enum(["true", "false", "1", "0", "yes", "no", "on", "off", ""]).transform((v) =>
  ["true", "1", "yes", "on"].includes(v)
);
const int = (min: number) => z.coerce.number().int().min(min);

const schema = z.object({
  DATABASE_URL: z.string().min(1).optional(),
  SUPABASE_DB_URL: z.string().min(1).optional(),
  DATA_DIR: z.string().min(1).default(".data"),
  PORT: int(0).max(65535).default(54321),
  AI_PROVIDER: z.enum(["local", "openai"]).default("local"),
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_BASE_URL: z.url().optional(),
  OPENAI_MODEL: z.string().min(1).default("gpt-4o-mini"),
  OPENAI_TIMEOUT_MS: int(1).default(30_000),
  STORAGE_BACKEND: z.enum(["fs", "supabase"]).optional(),
  STORAGE_BUCKET: z.string().min(1).default("images"),
  SUPABASE_URL: z.url().optional(),
  SUPABASE_SERVICE_ROLE_KEY: z.string().optional(),
  SUPABASE_SECRET_KEYS: z.string().optional(),
  ALLOW_PRIVATE_NETWORK: bool.default(false),
  MAX_ATTEMPTS: int(1).max(100).default(5),
  MAX_IMAGE_BYTES: int(1).default(20 * 1024 * 1024),
  MAX_IMAGE_PIXELS: int(1).default(100_000_000),
  DOWNLOAD_TIMEOUT_MS: int(1).default(15_000),
  JWT_SECRET: z.string().min(32).default(DEV_JWT_SECRET),
  // The Standard Webhooks secret (`whsec_` + base64) the notifier signs deliveries with; without
  // it every delivery fails, recorded with that reason, and can be redelivered once it is set.
  WEBHOOK_SECRET: z.string().regex(
    /^whsec_[A-Za-z0-9+/]{16,}={0,2}$/,
    "must be a Standard Webhooks secret: whsec_ followed by base64",
  ).optional(),
  RATE_LIMIT_PER_MINUTE: int(1).default(120),
  RATE_LIMIT_BURST: int(1).default(60),
  // Local platform only (Edge Functions have no threads): off-thread workers for the stages'
  // CPU-heavy work, and the hard deadline past which one is terminated.
  COMPUTE_WORKERS: int(1).max(16).default(1),
  COMPUTE_DEADLINE_MS: int(1).default(10_000),
  // Local platform only: invocations of each stage worker the scheduler keeps running at once
  // (on Supabase, how many pg_cron + pg_net calls overlap).
  WORKER_CONCURRENCY: int(1).max(64).default(1),
  // How long a stopping worker lets its jobs in flight run before giving their messages back.
  STOP_TIMEOUT_MS: int(1).default(10_000),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  // AI reuse, limits and budgets (README "AI reuse, limits and budgets"); billed providers only.
  // Reuse of a completed analysis of the same image: per owner, across owners, or never.
  AI_REUSE: z.enum(["owner", "global", "off"]).default("owner"),
  // Provider limits per (provider, model); defaults: OpenAI tier 1, gpt-4o-mini (500 RPM,
  // 200,000 TPM). A darkroom.provider_limits row wins for its model.
  AI_RPM: int(1).default(500),
  AI_TPM: int(1).default(200_000),
  AI_LIMIT_WINDOW_SECONDS: int(1).max(3600).default(60),
  // Share of a limit that may go out at once; the rest is spread over the window.
  AI_LIMIT_BURST: z.coerce.number().gt(0).max(1).default(0.1),
  // Tokens one analysis is taken at before it runs (the difference is booked after it).
  AI_ESTIMATED_TOKENS: int(0).default(3_300),
  // Daily caps (UTC day), global and per owner, in tokens and/or USD; unset = no cap. A
  // darkroom.ai_budgets row wins ('global', 'owner' for every owner, or an owner's id).
  AI_DAILY_TOKENS: int(0).optional(),
  AI_DAILY_USD: z.coerce.number().min(0).optional(),
  AI_OWNER_DAILY_TOKENS: int(0).optional(),
  AI_OWNER_DAILY_USD: z.coerce.number().min(0).optional(),
  // How often a task waiting for the budget looks again, in seconds.
  AI_BUDGET_RECHECK_SECONDS: int(1).max(3600).default(60),
  // How often a task waiting for another task's analysis of the same image looks again.
  AI_REUSE_POLL_SECONDS: int(1).max(600).default(2),
});

/** Darkroom's configuration. */
export type Config = Omit<z.infer<typeof schema>, "STORAGE_BACKEND"> & {
  STORAGE_BACKEND: "fs" | "supabase";
  /**
   * The key Storage is called with (it bypasses Storage RLS): SUPABASE_SERVICE_ROLE_KEY, else the
   * `default` (or first) key of SUPABASE_SECRET_KEYS; undefined when neither is set.
   */
  storageKey: string | undefined;
  /** The database to connect to: DATABASE_URL, else SUPABASE_DB_URL, else undefined (embedded). */
  databaseUrl: string | undefined;
};

/** Thrown when an environment variable has a bad value. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/**
 * Parses the configuration from `env` (default: the process environment). Empty strings count
 * as unset.
 *
 * @example
 * const config = loadConfig({ PORT: "8000" });
 */
export function loadConfig(env: Record<string, string | undefined> = Deno.env.toObject()): Config {
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== "") cleaned[key] = value;
  }
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    // Every bad setting at once: fixing them one start at a time is tedious.
    const problems = parsed.error.issues.map((issue) =>
      `${String(issue.path[0] ?? "environment")}: ${issue.message}`
    );
    throw new ConfigError(`Invalid configuration: ${problems.join("; ")}`);
  }
  const data = parsed.data;
  // A project whose legacy keys are disabled has no SUPABASE_SERVICE_ROLE_KEY: a secret key
  // serves Storage as well.
  const storageKey = data.SUPABASE_SERVICE_ROLE_KEY ??
    firstKey(parseKeySet("SUPABASE_SECRET_KEYS", data.SUPABASE_SECRET_KEYS));
  // On Supabase (SUPABASE_URL and a service key are set) blobs go to Storage unless told otherwise.
  const c = {
    ...data,
    storageKey,
    STORAGE_BACKEND: data.STORAGE_BACKEND ??
      (data.SUPABASE_URL && storageKey ? "supabase" as const : "fs" as const),
  };
  if (c.AI_PROVIDER === "openai" && !c.OPENAI_API_KEY) {
    throw new ConfigError(
      "Invalid configuration: OPENAI_API_KEY is required when AI_PROVIDER=openai",
    );
  }
  if (c.STORAGE_BACKEND === "supabase" && (!c.SUPABASE_URL || !c.storageKey)) {
    throw new ConfigError(
      "Invalid configuration: SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SECRET_KEYS) are required when STORAGE_BACKEND=supabase",
    );
  }
  return { ...c, databaseUrl: c.DATABASE_URL ?? c.SUPABASE_DB_URL };
}

/**
 * Parses a key set as Supabase gives it to functions (SUPABASE_PUBLISHABLE_KEYS,
 * SUPABASE_SECRET_KEYS): a JSON object from a key's name to the key. Unset is an empty set.
 *
 * @example
 * parseKeySet("SUPABASE_SECRET_KEYS", '{"default":"sb_secret_abc"}'); // {default: "sb_secret_abc"}
 */
export function parseKeySet(name: string, raw: string | undefined): Record<string, string> {
  if (raw === undefined || raw.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(`Invalid configuration: ${name}: not JSON`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`Invalid configuration: ${name}: not an object of named keys`);
  }
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== "string" || value.trim() === "") {
      throw new ConfigError(`Invalid configuration: ${name}: key ${key} is not a non-empty string`);
    }
  }
  return parsed as Record<string, string>;
}

/** The `default` key of a set, else its first; what supabase-js' admin clients take. */
function firstKey(keys: Record<string, string>): string | undefined {
  return keys.default ?? Object.values(keys)[0];
}
