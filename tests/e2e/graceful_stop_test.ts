// `deno task start` stopped by SIGTERM while downloads are in flight: it reads nothing more,
// gives back within STOP_TIMEOUT_MS the messages it holds (visible again at once, not after their
// visibility timeout), exits 0, and a restart completes the tasks.
import assert from "node:assert/strict";
import { openTestDb, type TestDb } from "../_helpers/db.ts";
import { fixtureBytes } from "../_helpers/fixtures.ts";
import { startPlatformProcess } from "../_helpers/platform_process.ts";
import { PGliteDb } from "../../local/pglite_db.ts";
import { signJwt } from "../../shared/auth.ts";
import { DEV_JWT_SECRET } from "../../shared/config.ts";
import type { Db } from "../../shared/db.ts";

const STOP_TIMEOUT_MS = 3_000;
const TASKS = 3;

/** An image server whose downloads stall until `serve()`; counts the requests it received. */
function stallingServer() {
  let serve: () => void = () => {};
  const served = new Promise<void>((resolve) => serve = resolve);
  let requests = 0;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async () => {
    requests++;
    await served;
    return new Response(await fixtureBytes("nikon_d70.jpg") as Uint8Array<ArrayBuffer>);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    get requests() {
      return requests;
    },
    serve,
    close: async () => {
      serve();
      await server.shutdown();
    },
  };
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test({
  name: "deno task start on SIGTERM gives back the messages it holds within STOP_TIMEOUT_MS",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "darkroom-stop-" });
    const images = stallingServer();
    let testDb: TestDb | undefined;
    const env: Record<string, string> = {
      PORT: "0",
      DATA_DIR: dataDir,
      LOG_LEVEL: "warn",
      ALLOW_PRIVATE_NETWORK: "true",
      DOWNLOAD_TIMEOUT_MS: "60000",
      STOP_TIMEOUT_MS: String(STOP_TIMEOUT_MS),
    };
    if (Deno.env.get("DATABASE_URL")) {
      testDb = await openTestDb("none");
      env.DATABASE_URL = testDb.url!;
    }
    try {
      const token = await signJwt(
        { role: "authenticated", sub: crypto.randomUUID() },
        DEV_JWT_SECRET,
      );
      const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
      const first = await startPlatformProcess(env);
      const ids: string[] = [];
      for (let i = 0; i < TASKS; i++) {
        const res = await fetch(`${first.api}/tasks`, {
          method: "POST",
          headers,
          body: JSON.stringify({ imageUrl: `${images.url}/stall/${i}.jpg` }),
        });
        assert.equal(res.status, 202);
        ids.push((await res.json()).taskId);
      }
      // The download worker handles one batch at a time: some tasks may still wait unread.
      await until("downloads to be in flight", () => images.requests >= 1);

      const sent = performance.now();
      first.child.kill("SIGTERM");
      const killer = setTimeout(() => first.child.kill("SIGKILL"), STOP_TIMEOUT_MS + 20_000);
      const status = await first.child.status;
      const stopMs = Math.round(performance.now() - sent);
      clearTimeout(killer);
      // Its whole output: the banner and "Stopped" on stdout, the JSON log lines on stderr.
      const out = await first.output;
      console.log(`stopped in ${stopMs} ms (STOP_TIMEOUT_MS=${STOP_TIMEOUT_MS})`);
      assert.equal(status.code, 0, out);
      assert.match(out, /Stopped/);
      assert.match(out, /message released, outcome ignored/);
      assert.ok(stopMs < STOP_TIMEOUT_MS + 5_000, `stop took ${stopMs} ms`);

      // The held messages are visible again now, not after their 60 s visibility timeout.
      const db: Db = testDb ? testDb.connect() : await PGliteDb.open(`${dataDir}/pgdata`);
      try {
        const rows = await db.query<{ task_id: string; visible: boolean }>(
          `select message ->> 'taskId' as task_id, vt <= now() as visible
             from pgmq.q_image_download`,
        );
        assert.deepEqual(rows.map((r) => r.task_id).sort(), [...ids].sort());
        assert.ok(rows.every((r) => r.visible), JSON.stringify(rows));
      } finally {
        if (!testDb) await db.close();
      }

      // A restart completes them.
      images.serve();
      const restarted = performance.now();
      const second = await startPlatformProcess(env);
      await until("the tasks to complete", async () => {
        for (const id of ids) {
          const res = await fetch(`${second.api}/tasks/${id}`, { headers });
          const task = await res.json();
          if (task.status === "failed") throw new Error(JSON.stringify(task));
          if (task.status !== "completed") return false;
        }
        return true;
      });
      console.log(`restart completed the tasks in ${Math.round(performance.now() - restarted)} ms`);
      second.child.kill("SIGTERM");
      assert.equal((await second.child.status).code, 0);
      await second.output;
    } finally {
      await images.close();
      await testDb?.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});
