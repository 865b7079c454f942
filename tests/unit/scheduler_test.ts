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

/** A worker that finds nothing, counting its calls. */
function idleWorker(name: string, extra: Record<string, unknown> = {}) {
  const calls: number[] = [];
  return {
    calls,
    worker: {
      name,
      ...extra,
      handler: () => {
        calls.push(performance.now());
        return Promise.resolve(Response.json({ read: 0 }));
      },
    },
  };
}

Deno.test("an idle worker polls less and less often, up to maxIdlePollMs", async () => {
  // Two schedulers side by side over the same second: one without room to back off.
  const backingOff = idleWorker("a");
  const steady = idleWorker("b");
  const a = new Scheduler({
    serviceRoleKey: "k",
    log,
    idlePollMs: 20,
    maxIdlePollMs: 160,
    workers: [backingOff.worker],
  });
  const b = new Scheduler({
    serviceRoleKey: "k",
    log,
    idlePollMs: 20,
    maxIdlePollMs: 20,
    workers: [steady.worker],
  });
  a.start();
  b.start();
  await sleep(1_000);
  await a.stop();
  await b.stop();
  assert.ok(
    backingOff.calls.length * 2 < steady.calls.length,
    `backing off ${backingOff.calls.length} calls, steady ${steady.calls.length}`,
  );
  // The gaps grow: the 4th is at least twice the 1st.
  const gaps = backingOff.calls.slice(1).map((t, i) => t - backingOff.calls[i]);
  assert.ok(gaps[3] >= 2 * gaps[0], `gaps ${gaps.map(Math.round)}`);
});

Deno.test("a wake-up brings a backed-off worker back to the short interval", async () => {
  const w = idleWorker("w");
  const scheduler = new Scheduler({
    serviceRoleKey: "k",
    log,
    idlePollMs: 20,
    maxIdlePollMs: 60_000,
    workers: [w.worker],
  });
  scheduler.start();
  await sleep(1_500); // polls at 0, 20, 60, 140, 300, 620, 1260; the next would be ~2540
  const before = w.calls.length;
  scheduler.wake("w");
  await sleep(600);
  const after = w.calls.length - before;
  await scheduler.stop();
  // The wake-up's call, then polls 20, 40, 80, 160 ms apart again: without the reset, the wake's
  // call alone.
  assert.ok(after >= 3, `${after} calls after the wake-up`);
});

Deno.test("wakeDelayMs gathers the wake-ups of a burst into few calls", async () => {
  const gathered = idleWorker("gathered", { wakeDelayMs: 200 });
  const eager = idleWorker("eager");
  const scheduler = new Scheduler({
    serviceRoleKey: "k",
    log,
    idlePollMs: 60_000,
    workers: [gathered.worker, eager.worker],
  });
  scheduler.start();
  await sleep(50);
  const g0 = gathered.calls.length, e0 = eager.calls.length;
  for (let i = 0; i < 30; i++) {
    scheduler.wake("gathered", "eager");
    await sleep(10);
  }
  await sleep(250);
  const g = gathered.calls.length - g0, e = eager.calls.length - e0;
  await scheduler.stop();
  assert.ok(g >= 1, "woken at all");
  assert.ok(g * 3 <= e, `gathered ${g} calls, eager ${e}`);
});

/**
 * A scheduler (no idle poll: only draining and wake-ups call again) driving one worker over a
 * queue of `queued` messages, `batch` read per call; `withMore` adds the answer's `more`.
 */
function queueWorker(queued: number, batch: number, withMore: boolean) {
  const q = { queued, reads: [] as number[] };
  const scheduler = new Scheduler({
    serviceRoleKey: "k",
    log,
    idlePollMs: 60_000,
    workers: [{
      name: "w",
      handler: () => {
        const read = Math.min(batch, q.queued);
        q.queued -= read;
        q.reads.push(read);
        return Promise.resolve(Response.json(withMore ? { read, more: read === batch } : { read }));
      },
    }],
  });
  return { q, scheduler };
}

Deno.test("a full batch is read again at once; a short one (more: false) waits for a wake-up", async () => {
  const { q, scheduler } = queueWorker(7, 3, true);
  scheduler.start();
  await sleep(100);
  assert.deepEqual(q.reads, [3, 3, 1], "drained full batches, stopped after the short one");
  q.queued = 2;
  scheduler.wake("w");
  await sleep(100);
  assert.deepEqual(q.reads, [3, 3, 1, 2], "the wake-up read the rest, and nothing empty after");
  await scheduler.stop();
});

Deno.test("an answer without `more` drains as before: called again until it reads nothing", async () => {
  const { q, scheduler } = queueWorker(5, 2, false);
  scheduler.start();
  await sleep(100);
  await scheduler.stop();
  assert.deepEqual(q.reads, [2, 2, 1, 0]);
});
