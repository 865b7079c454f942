/**
 * @module edge — dependencies of a function deployed on Supabase, built once per instance from
 * its environment (secrets, SUPABASE_DB_URL, SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY).
 */
import { JwtVerifier } from "./auth.ts";
import { ConfigError, DEV_JWT_SECRET, loadConfig } from "./config.ts";
import { PostgresDb } from "./db.ts";
import type { FunctionDeps } from "./functions.ts";
import { createLogger } from "./log.ts";
import { createProvider, createStore } from "./providers.ts";

let cached: FunctionDeps | undefined;

/** The instance's dependencies; a small pool, since many instances run at once. */
export function edgeDeps(
  env: Record<string, string | undefined> = Deno.env.toObject(),
): FunctionDeps {
  if (cached) return cached;
  const config = loadConfig(env);
  if (!config.databaseUrl) {
    throw new Error("Invalid configuration: SUPABASE_DB_URL (or DATABASE_URL) is required");
  }
  const supabaseUrl = config.SUPABASE_URL;
  cached = {
    config,
    db: new PostgresDb(config.databaseUrl, { max: 3 }),
    store: createStore(config, { publicBaseUrl: supabaseUrl ?? "" }),
    provider: createProvider(config),
    verifier: edgeVerifier(env),
    log: createLogger(config.LOG_LEVEL),
  };
  return cached;
}

/**
 * The token verifier of a deployed function, failing closed: the project's legacy JWT secret
 * (`JWT_SECRET`) and/or its signing keys (`SUPABASE_JWKS`, which Supabase gives every function,
 * else the JWKS under `SUPABASE_URL`). With none of them, or with the public development secret,
 * it throws a ConfigError: a function that cannot verify tokens must not start.
 */
export function edgeVerifier(env: Record<string, string | undefined>): JwtVerifier {
  const secret = env.JWT_SECRET || undefined;
  if (secret === DEV_JWT_SECRET) {
    throw new ConfigError(
      "Refusing to start: JWT_SECRET is the public development secret; set the project's JWT secret",
    );
  }
  let jwks;
  if (env.SUPABASE_JWKS) {
    try {
      jwks = JSON.parse(env.SUPABASE_JWKS);
    } catch {
      throw new ConfigError("Invalid configuration: SUPABASE_JWKS is not JSON");
    }
    if (!Array.isArray(jwks?.keys)) {
      throw new ConfigError("Invalid configuration: SUPABASE_JWKS has no keys array");
    }
  }
  const jwksUrl = !jwks && env.SUPABASE_URL
    ? `${env.SUPABASE_URL.replace(/\/+$/, "")}/auth/v1/.well-known/jwks.json`
    : undefined;
  if (!secret && !jwks && !jwksUrl) {
    throw new ConfigError(
      "Refusing to start: no way to verify tokens; set JWT_SECRET or provide SUPABASE_JWKS",
    );
  }
  return new JwtVerifier({ secret, jwks, jwksUrl });
}
