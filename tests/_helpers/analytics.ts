/**
 * @module tests/_helpers/analytics — runs the analytics-worker through its HTTP handler.
 */
import assert from "node:assert/strict";
import { JwtVerifier, signJwt } from "../../shared/auth.ts";
import { DEV_JWT_SECRET, loadConfig } from "../../shared/config.ts";
import type { Db } from "../../shared/db.ts";
import { createAnalyticsWorker } from "../../shared/functions/analytics_worker.ts";
import { silentLogger } from "../../shared/log.ts";
import { createStore } from "../../shared/providers.ts";

const secret = DEV_JWT_SECRET;

/** Runs the analytics worker until its queue is empty; returns the events it counted. */
export async function drainAnalytics(db: Db): Promise<number> {
  const config = loadConfig({ LOG_LEVEL: "error" });
  const worker = createAnalyticsWorker({
    config,
    db,
    verifier: new JwtVerifier({ secret }),
    log: silentLogger,
    store: createStore(config, { publicBaseUrl: "http://127.0.0.1" }),
  });
  const service = await signJwt({ role: "service_role" }, secret);
  let done = 0;
  for (;;) {
    const res = await worker(
      new Request("http://x/", { method: "POST", headers: { authorization: `Bearer ${service}` } }),
    );
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    if (body.read === 0) return done;
    assert.equal(body.errors, 0, JSON.stringify(body));
    done += body.done;
  }
}
