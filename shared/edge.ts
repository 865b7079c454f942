/**
 * @module edge — what every function deployed on Supabase needs, built from its environment
 * (secrets, SUPABASE_DB_URL, SUPABASE_URL, the project's API keys and JWKS). What only some
 * functions need (the AI provider) is built by their own module under shared/functions/, so no
 * function carries another's packages.
 */
import { JwtVerifier } from "./auth.ts";
import { ConfigError, DEV_JWT_SECRET, loadConfig, parseKeySet } from "./config.ts";
import { PostgresDb } from "./db.ts";
import type { BaseDeps } from "./functions/common.ts";
import { createLogger } from "./log.ts";
import { createStore } from "./storage/create_store.ts";

let cached: BaseDeps | undefined;

/** The instance's dependencies, built once; a small pool, since many instances run at once. */
export function edgeDeps(
  env: Record<string, string | undefined> = Deno.env.toObject(),
): BaseDeps {
  cached ??= buildEdgeDeps(env);
  return cached;
}

/**
 * Builds the dependencies every function shares from `env`, each call anew (tests build several).
 * Throws ConfigError when the configuration is bad or tokens could not be verified.
 */
export function buildEdgeDeps(env: Record<string, string | undefined>): BaseDeps {
  const config = loadConfig(env);
  if (!config.databaseUrl) {
    throw new ConfigError("Invalid configuration: SUPABASE_DB_URL (or DATABASE_URL) is required");
  }
  const verifier = edgeVerifier(env);
  return {
    config,
    db: new PostgresDb(config.databaseUrl, { max: 3 }),
    store: createStore(config, { publicBaseUrl: config.SUPABASE_URL ?? "" }),
    verifier,
    log: createLogger(config.LOG_LEVEL),
  };
}

/**
 * The caller verifier of a deployed function, failing closed: the project's legacy JWT secret
 * (`JWT_SECRET`) and/or its signing keys (`SUPABASE_JWKS`, which Supabase gives every function,
 * else the JWKS under `SUPABASE_URL`), and its API keys (`SUPABASE_PUBLISHABLE_KEYS` as anon,
 * `SUPABASE_SECRET_KEYS` as service_role). With no way to verify a JWT, or with the public
 * development secret, it throws a ConfigError: a function that cannot verify tokens must not start.
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
  const apiKeys = {
    publishable: Object.values(
      parseKeySet("SUPABASE_PUBLISHABLE_KEYS", env.SUPABASE_PUBLISHABLE_KEYS),
    ),
    secret: Object.values(parseKeySet("SUPABASE_SECRET_KEYS", env.SUPABASE_SECRET_KEYS)),
  };
  return new JwtVerifier({ secret, jwks, jwksUrl, apiKeys });
}
