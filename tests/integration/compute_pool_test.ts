/**
 * @module tests/integration/compute_pool_test — the local platform's compute pool: the same
 * answers as inline on every fixture, StageErrors intact across the worker boundary, a call past
 * its deadline terminated as a retryable timeout (and the pool usable after), an event loop that
 * keeps running while a worker is busy, and a stop that leaves nothing behind.
 */
import assert from "node:assert/strict";
import { noisyJpeg } from "../_helpers/hostile_images.ts";
import type { AnalysisInput } from "../../shared/ai/types.ts";
import { type ExtractResult, inlineCompute } from "../../shared/compute.ts";
import { StageError } from "../../shared/errors.ts";
import { emptyMetadata } from "../../shared/metadata/types.ts";
import { ComputePool } from "../../local/compute/pool.ts";
import { deserializeError, serializeError } from "../../local/compute/protocol.ts";
import { fixtureBytes, loadOracle } from "../_helpers/fixtures.ts";

const ORACLE = await loadOracle();
const MAX_PIXELS = 100_000_000;

/**
 * A real input that is slow on purpose: a 1000x1000 JPEG of noise, which the local provider
 * decodes in full (a few hundred ms of jpeg-js).
 */
function slowInput(side: number): AnalysisInput {
  return {
    bytes: noisyJpeg(side),
    contentType: "image/jpeg",
    width: side,
    height: side,
    format: "jpeg",
    metadata: emptyMetadata(),
  };
}
const SLOW = slowInput(1000);
/** An input the local provider answers without decoding (no readable header). */
const CHEAP: AnalysisInput = {
  bytes: new Uint8Array(16),
  contentType: "image/png",
  width: null,
  height: null,
  format: null,
  metadata: emptyMetadata(),
};

async function fixtureInput(file: string, contentType: string): Promise<AnalysisInput> {
  const bytes = await fixtureBytes(file);
  const { extracted } = await inlineCompute.extract(bytes, { maxPixels: MAX_PIXELS });
  return { bytes, contentType, ...extracted };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

function assertTimeout(error: unknown, pattern: RegExp): asserts error is StageError {
  assert.ok(error instanceof StageError, `a StageError: ${error}`);
  assert.equal(error.code, "timeout");
  assert.equal(error.retryable, true);
  assert.match(error.message, pattern);
}

/** Largest gap between ticks of a 10 ms interval while `work` runs, in ms. */
/** How the event loop fared while `work` ran: the largest gap between ticks of a 10 ms interval,
 * the number of ticks, and the wall time of the call. Compared within one run, never to a clock. */
async function loopDuring(
  work: () => Promise<unknown>,
): Promise<{ largest: number; ticks: number; elapsed: number }> {
  const started = performance.now();
  let last = started;
  let largest = 0;
  let ticks = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    largest = Math.max(largest, now - last);
    last = now;
    ticks++;
  }, 10);
  let elapsed = 0;
  try {
    await work().catch(() => {});
    elapsed = performance.now() - started;
    // The last tick before the end counts too.
    await new Promise((r) => setTimeout(r, 20));
  } finally {
    clearInterval(tick);
  }
  return { largest: Math.max(largest, performance.now() - last), ticks, elapsed };
}

Deno.test("ComputePool gives what inline gives on every fixture (extract and analyzeLocal)", async () => {
  const pool = new ComputePool({ size: 2 });
  try {
    await Promise.all(ORACLE.map(async ({ file, mimeType }) => {
      const bytes = await fixtureBytes(file);
      const size = bytes.byteLength;
      const pooled = await pool.extract(bytes, { maxPixels: MAX_PIXELS });
      assert.equal(bytes.byteLength, size, `${file}: the caller's bytes are not detached`);
      const inline: ExtractResult = await inlineCompute.extract(bytes, { maxPixels: MAX_PIXELS });
      assert.deepEqual(pooled, inline, file);
      const input = await fixtureInput(file, mimeType);
      assert.deepEqual(
        await pool.analyzeLocal(input),
        await inlineCompute.analyzeLocal(input),
        file,
      );
    }));
    // The embedded preview comes back as bytes (transferred from the worker).
    const { thumbnail } = await pool.extract(await fixtureBytes("nikon_gps_1.jpg"), {
      maxPixels: MAX_PIXELS,
    });
    assert.ok(thumbnail?.bytes instanceof Uint8Array);
    assert.deepEqual([thumbnail.width, thumbnail.height, thumbnail.bytes[0]], [160, 120, 0xff]);
  } finally {
    pool.stop();
  }
});

Deno.test("ComputePool passes a StageError through with its code, retryable flag and message", async () => {
  const pool = new ComputePool();
  try {
    const cases: [Uint8Array, number][] = [
      [new TextEncoder().encode("<!doctype html><p>not an image</p>"), MAX_PIXELS],
      [await fixtureBytes("nikon_gps_1.jpg"), 1_000], // 640x480: over the pixel cap
    ];
    for (const [bytes, maxPixels] of cases) {
      const inline = await rejection(inlineCompute.extract(bytes, { maxPixels }));
      const pooled = await rejection(pool.extract(bytes, { maxPixels }));
      assert.ok(inline instanceof StageError);
      assert.ok(pooled instanceof StageError, `a StageError: ${pooled}`);
      assert.deepEqual(
        { name: pooled.name, code: pooled.code, retryable: pooled.retryable, msg: pooled.message },
        { name: inline.name, code: inline.code, retryable: inline.retryable, msg: inline.message },
      );
    }
  } finally {
    pool.stop();
  }
});

Deno.test("serializeError() and deserializeError() keep a StageError's fields; other errors stay errors", () => {
  const stage = new StageError("ai_error", "Cannot analyze image: status 429", true, {
    retryAfterSeconds: 7,
  });
  const back = deserializeError(structuredClone(serializeError(stage)));
  assert.ok(back instanceof StageError);
  assert.deepEqual(
    [back.code, back.retryable, back.retryAfterSeconds, back.message],
    ["ai_error", true, 7, "Cannot analyze image: status 429"],
  );
  const plain = deserializeError(structuredClone(serializeError(new RangeError("boom"))));
  assert.ok(!(plain instanceof StageError));
  assert.deepEqual([plain.name, plain.message], ["RangeError", "boom"]);
  assert.equal(deserializeError(serializeError("thrown string")).message, "thrown string");
});

Deno.test("ComputePool terminates a call past its deadline with a retryable timeout, then works again", async () => {
  const pool = new ComputePool({ size: 1, deadlineMs: 100 });
  try {
    await pool.analyzeLocal(CHEAP); // the worker has loaded its modules
    const started = performance.now();
    const error = await rejection(pool.analyzeLocal(SLOW));
    const elapsed = performance.now() - started;
    assertTimeout(error, /^Cannot process image: over the 100 ms CPU deadline$/);
    assert.ok(elapsed < 300, `rejected at the deadline, not when the work ended: ${elapsed} ms`);
    // A replacement takes the next call once loaded (loading is not charged to the call). The
    // call is a cheap one: a fresh worker's first extraction can itself take ~100 ms of JIT.
    assert.deepEqual(await pool.analyzeLocal(CHEAP), await inlineCompute.analyzeLocal(CHEAP));
  } finally {
    pool.stop();
  }
});

Deno.test("ComputePool keeps the event loop running while a worker decodes", async () => {
  const pool = new ComputePool({ size: 1, deadlineMs: 10_000 });
  try {
    await pool.extract(await fixtureBytes("nikon_gps_1.jpg"), { maxPixels: MAX_PIXELS });
    // The same call twice, inline and pooled, compared with each other (no wall-clock bound):
    // inline, the loop is held for nearly the whole call; pooled, it keeps ticking throughout.
    const inline = await loopDuring(() => inlineCompute.analyzeLocal(SLOW));
    const pooled = await loopDuring(() => pool.analyzeLocal(SLOW));
    assert.ok(
      inline.largest > inline.elapsed * 0.7,
      `inline stalls the loop: gap ${inline.largest} ms of a ${inline.elapsed} ms call`,
    );
    assert.ok(
      pooled.largest < pooled.elapsed / 2 && pooled.largest < inline.largest / 2,
      `pooled, the interval kept firing: gap ${pooled.largest} ms of a ${pooled.elapsed} ms call`,
    );
    assert.ok(pooled.ticks >= 3, `pooled, the interval ticked ${pooled.ticks} times`);
  } finally {
    pool.stop();
  }
});

Deno.test("ComputePool fails an aborted call and every call at stop(), retryable", async () => {
  const pool = new ComputePool({ size: 1, deadlineMs: 10_000 });
  try {
    const controller = new AbortController();
    const running = pool.analyzeLocal({ ...SLOW, signal: controller.signal });
    const queued = pool.analyzeLocal({ ...SLOW, signal: controller.signal });
    setTimeout(() => controller.abort(new Error("stage budget")), 50);
    assertTimeout(await rejection(running), /^Cannot process image: aborted$/);
    assertTimeout(await rejection(queued), /^Cannot process image: aborted$/);

    const inFlight = pool.analyzeLocal(SLOW);
    await new Promise((r) => setTimeout(r, 50));
    pool.stop();
    for (const error of [await rejection(inFlight), await rejection(pool.analyzeLocal(SLOW))]) {
      assert.ok(error instanceof StageError);
      assert.equal(error.retryable, true);
      assert.equal(error.message, "Cannot process image: the compute pool is stopped");
    }
  } finally {
    pool.stop();
  }
});
