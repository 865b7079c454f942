/**
 * @module main — `deno task start`: runs the local platform until SIGINT/SIGTERM.
 */
import { ConfigError, DEV_JWT_SECRET, loadConfig } from "../shared/config.ts";
import { STAGES } from "../shared/stages.ts";
import { startPlatform } from "./platform.ts";

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    Deno.exit(2);
  }
  throw err;
}

let platform;
try {
  platform = await startPlatform(config);
} catch (err) {
  // A busy port is a setting to change, not a crash: one line, no stack trace.
  if (err instanceof Deno.errors.AddrInUse) {
    console.error(`Cannot start: port ${config.PORT} is in use (set PORT to another port)`);
    Deno.exit(1);
  }
  throw err;
}
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log("Stopping Darkroom...");
  // The stop is bounded by STOP_TIMEOUT_MS (the workers give back what they still hold then);
  // should anything else hang past it, exit anyway rather than wait for a SIGKILL.
  const hung = setTimeout(() => {
    console.error("Stop did not finish in time; exiting");
    Deno.exit(1);
  }, config.STOP_TIMEOUT_MS + 5_000);
  await platform.stop();
  clearTimeout(hung);
  console.log("Stopped.");
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);

const fn = `${platform.url}/functions/v1`;
// A ready development user (saved under DATA_DIR, so the same id across restarts).
const DEV_EMAIL = "dev@darkroom.local";
const DEV_PASSWORD = "darkroom-dev";
const devSession = await platform.devAuth.signIn(DEV_EMAIL, DEV_PASSWORD);
console.log(`
Darkroom is running.

         API URL: ${platform.url}
   Functions URL: ${fn}
             api: ${fn}/api   (OpenAPI: ${fn}/api/openapi.json)
       Dashboard: ${platform.url}/   (the anon key is its default key; sign in from the page)
        API docs: ${platform.url}/docs
         workers: ${STAGES.map((s) => `${fn}/${s.worker}`).join(", ")}
        Database: ${
  config.databaseUrl ? "DATABASE_URL" : `embedded PGlite in ${config.DATA_DIR}/pgdata`
} (pgmq: ${platform.bootstrap.pgmq}, migrations applied now: ${platform.bootstrap.applied.length})
         Storage: ${platform.deps.store.backend}
     AI provider: ${platform.deps.provider.name}
 Private network: ${
  config.ALLOW_PRIVATE_NETWORK
    ? "allowed (ALLOW_PRIVATE_NETWORK=true: loopback and LAN image URLs are fetched)"
    : "blocked (set ALLOW_PRIVATE_NETWORK=true to fetch from this machine or your LAN)"
}
      JWT secret: ${
  config.JWT_SECRET === DEV_JWT_SECRET
    ? "the development default (set JWT_SECRET to change)"
    : "JWT_SECRET"
}
        anon key: ${platform.anonKey}
service_role key: ${platform.serviceRoleKey}
 publishable key: ${platform.publishableKey}
      secret key: ${platform.secretKey}

Development sign-in (local only): ${platform.url}/auth/v1 answers supabase-js auth.signUp,
signInWithPassword and signInAnonymously. A ready user: ${DEV_EMAIL} / ${DEV_PASSWORD}
      user token: ${devSession.access_token}
                  (user ${devSession.user.id}, valid 1 h; Authorization: Bearer <token>)

Stop with Ctrl+C.
`);
