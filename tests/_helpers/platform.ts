/**
 * @module tests/_helpers/platform — the local platform started in-process on the run's engine:
 * a fresh PostgreSQL database when DATABASE_URL is set, else PGlite under a temporary DATA_DIR.
 */
import { type Config, loadConfig } from "../../shared/config.ts";
import { type Logger, silentLogger } from "../../shared/log.ts";
import { type Platform, startPlatform } from "../../local/platform.ts";
import { openTestDb, type TestDb } from "./db.ts";
import { signJwt } from "../../shared/auth.ts";

/** A platform for a test, with what is needed to restart it on the same data. */
export interface TestPlatform {
  platform: Platform;
  config: Config;
  /** `${url}/functions/v1/api` */
  api: string;
  /** A token of a new authenticated user. */
  userToken(sub?: string): Promise<string>;
  /** Stops the platform, keeping its data. */
  stop(): Promise<void>;
  /** Starts it again on the same data. */
  restart(): Promise<Platform>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

/** Starts a platform with `env` on top of test defaults; `log` default silent. */
export async function startTestPlatform(
  env: Record<string, string> = {},
  log: Logger = silentLogger,
): Promise<TestPlatform> {
  const dataDir = await Deno.makeTempDir({ prefix: "darkroom-test-" });
  let testDb: TestDb | undefined;
  const base: Record<string, string> = {
    DATA_DIR: dataDir,
    PORT: "0",
    ALLOW_PRIVATE_NETWORK: "true",
    DOWNLOAD_TIMEOUT_MS: "3000",
    LOG_LEVEL: "error",
  };
  if (Deno.env.get("DATABASE_URL")) {
    testDb = await openTestDb("none");
    base.DATABASE_URL = testDb.url!;
    await testDb.db.close();
  }
  const config = loadConfig({ ...base, ...env });
  let platform = await startPlatform(config, { log, idlePollMs: 50 });
  let running = true;
  const t: TestPlatform = {
    get platform() {
      return platform;
    },
    config,
    get api() {
      return `${platform.url}/functions/v1/api`;
    },
    userToken: (sub = crypto.randomUUID()) =>
      signJwt({ role: "authenticated", sub }, config.JWT_SECRET, "1h"),
    async stop() {
      if (running) await platform.stop();
      running = false;
    },
    async restart() {
      if (running) await platform.stop();
      platform = await startPlatform(config, { log, idlePollMs: 50 });
      running = true;
      return platform;
    },
    async close() {
      await t.stop();
      if (testDb) await testDb.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
  return t;
}

/** Polls GET /tasks/:id until the task ends (or `timeoutMs`), and returns it. */
export async function waitForTask(
  api: string,
  token: string,
  taskId: string,
  timeoutMs = 20_000,
): Promise<Record<string, unknown> & { status: string }> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const res = await fetch(`${api}/tasks/${taskId}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const task = await res.json();
    if (["completed", "failed", "cancelled"].includes(task.status)) return task;
    if (Date.now() > deadline) {
      throw new Error(`task ${taskId} still ${task.status} after ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
