// The local scheduler (local/scheduler.ts) driving worker handlers in-process: plain handlers
// that answer what a worker answers ({read}), counted; no database.
import assert from "node:assert/strict";
import { Scheduler } from "../../local/scheduler.ts";
import { createLogger } from "../../shared/log.ts";

const log = createLogger("error");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("a worker with concurrency 3 has three invocations in flight at once", async () => {
  let inFlight = 0, most = 0, calls = 0;
  const scheduler = new Scheduler({
    serviceRoleKey: "k",
    log,
    idlePollMs: 20,
    workers: [{
      name: "w",
      concurrency: 3,
      handler: async () => {
        calls++;
        inFlight++;
        most = Math.max(most, inFlight);
        await sleep(30);
        inFlight--;
        return Response.json({ read: 0 });
      },
    }],
  });
  scheduler.start();
  await sleep(200);
  await scheduler.stop();
  assert.equal(most, 3);
  assert.ok(calls >= 6, `calls ${calls}`);
});

Deno.test("wake() reaches every invocation of a worker", async () => {
  const woken: number[] = [];
  let started = 0;
  const scheduler = new Scheduler({
    serviceRoleKey: "k",
    log,
    idlePollMs: 60_000, // no poll in this test: only a wake-up calls again
    workers: [{
      name: "w",
      concurrency: 2,
      handler: () => {
        woken.push(started++);
        return Promise.resolve(Response.json({ read: 0 }));
      },
    }],
  });
  scheduler.start();
  await sleep(50);
  assert.equal(woken.length, 2, "one call per invocation at start");
  scheduler.wake("w");
  await sleep(50);
  assert.equal(woken.length, 4, "both invocations woken");
  await scheduler.stop();
});
