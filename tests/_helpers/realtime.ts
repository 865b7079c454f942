/**
 * @module tests/_helpers/realtime — the local Realtime stand-in served over loopback by
 * `Deno.serve` through the function host, as the platform serves it, for the real supabase-js.
 */
import { JwtVerifier } from "../../shared/auth.ts";
import { DEV_JWT_SECRET } from "../../shared/config.ts";
import type { Db } from "../../shared/db.ts";
import { silentLogger } from "../../shared/log.ts";
import { createFunctionHost } from "../../local/function_host.ts";
import { createRealtime, type Realtime } from "../../local/realtime/server.ts";

/** A Realtime server on a free loopback port. */
export interface RealtimeServer {
  /** Base URL for createClient, e.g. http://127.0.0.1:49152 */
  url: string;
  realtime: Realtime;
  close(): Promise<void>;
}

/** Installs the change log on `db` and serves Realtime for it (JWTs with DEV_JWT_SECRET). */
export async function startRealtimeServer(
  db: Db,
  opts: { pollMs?: number } = {},
): Promise<RealtimeServer> {
  const realtime = createRealtime({
    db,
    verifier: new JwtVerifier({ secret: DEV_JWT_SECRET }),
    log: silentLogger,
    pollMs: opts.pollMs ?? 50,
  });
  await realtime.installSql();
  const host = createFunctionHost({}, [realtime.route]);
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    (req, info) => host(req, info.remoteAddr.hostname),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    realtime,
    async close() {
      await realtime.close();
      await server.shutdown();
    },
  };
}
