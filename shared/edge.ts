/**
 * @module edge — dependencies of a function deployed on Supabase, built once per instance from
 * its environment (secrets, SUPABASE_DB_URL, SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY).
 */
import { JwtVerifier } from "./auth.ts";
import { loadConfig } from "./config.ts";
import { PostgresDb } from "./db.ts";
import type { FunctionDeps } from "./functions.ts";
import { createLogger } from "./log.ts";
import { createProvider, createStore } from "./providers.ts";

let cached: FunctionDeps | undefined;

/** The instance's dependencies; a small pool, since many instances run at once. */
export function edgeDeps(): FunctionDeps {
  if (cached) return cached;
  const config = loadConfig();
  if (!config.databaseUrl) {
    throw new Error("Invalid configuration: SUPABASE_DB_URL (or DATABASE_URL) is required");
  }
  const supabaseUrl = config.SUPABASE_URL;
  cached = {
    config,
    db: new PostgresDb(config.databaseUrl, { max: 3 }),
    store: createStore(config, { publicBaseUrl: supabaseUrl ?? "" }),
    provider: createProvider(config),
    verifier: new JwtVerifier({
      secret: config.JWT_SECRET,
      jwksUrl: supabaseUrl ? `${supabaseUrl}/auth/v1/.well-known/jwks.json` : undefined,
    }),
    log: createLogger(config.LOG_LEVEL),
  };
  return cached;
}
