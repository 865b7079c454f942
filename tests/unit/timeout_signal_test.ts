// timeoutSignal(): the runners' per-job time budget, a timer that is cleared when the job ends.
import assert from "node:assert/strict";
import { timeoutSignal } from "../../shared/batch.ts";

Deno.test("timeoutSignal() aborts after its time with a TimeoutError, as AbortSignal.timeout", async () => {
  const t = timeoutSignal(20);
  assert.equal(t.signal.aborted, false);
  await new Promise((r) => t.signal.addEventListener("abort", r, { once: true }));
  assert.equal((t.signal.reason as DOMException).name, "TimeoutError");
  t.clear(); // clearing a fired one is harmless
});

Deno.test("timeoutSignal().clear() ends the timer: the signal never aborts, nothing is left pending", async () => {
  // The test sanitizer fails this test if a timer outlives it.
  const t = timeoutSignal(30);
  t.clear();
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(t.signal.aborted, false);
});

Deno.test("a fetch given a timeoutSignal fails with TimeoutError when the server is too slow", async () => {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async () => {
    await new Promise((r) => setTimeout(r, 300));
    return new Response("late");
  });
  const t = timeoutSignal(50);
  try {
    await assert.rejects(
      fetch(`http://127.0.0.1:${server.addr.port}/`, { signal: t.signal }),
      (err: Error) => err.name === "TimeoutError",
    );
  } finally {
    t.clear();
    await server.shutdown();
  }
});
