/**
 * @module tests/integration/parser_fuzz_test — fast-check feeds the real images of
 * tests/fixtures/images, mutated (bit flips, bytes set to edge values, truncations, segments
 * spliced in from another image or the same one, ranges dropped or repeated), through every
 * parser an image meets: type sniffing, the header and dimension reader, the bounds checks,
 * metadata extraction, the raw EXIF reader, thumbnail extraction, the local AI's colour decode
 * and the local provider. Property: the stage-facing calls throw nothing but a StageError with a
 * task error code, the others nothing at all; each call stays under a CPU-time cap and grows the
 * process's memory by less than a cap.
 *
 * FUZZ_RUNS sets the number of mutated images (default 300, CI's count); FUZZ_SEED replays a run.
 */
import assert from "node:assert/strict";
import process from "node:process";
import fc from "fast-check";
import { decodeForColors } from "../../shared/ai/decode.ts";
import { createLocalProvider } from "../../shared/ai/local.ts";
import { StageError, TASK_ERROR_CODES } from "../../shared/errors.ts";
import { checkImageBounds } from "../../shared/metadata/bounds.ts";
import { readHeader } from "../../shared/metadata/dimensions.ts";
import { readRawMetadata } from "../../shared/metadata/exif_read.ts";
import { extractImage } from "../../shared/metadata/extract.ts";
import { extractThumbnail } from "../../shared/metadata/thumbnail.ts";
import { emptyMetadata } from "../../shared/metadata/types.ts";
import { sniffImageType } from "../../shared/net/sniff.ts";
import { fixtureBytes } from "../_helpers/fixtures.ts";
import { jpegWithExif, tiffIfdOutside } from "../_helpers/hostile_files.ts";

/** CPU time one call may take (an edge function has 2 s of CPU in all); CPU, not wall time. */
const TIME_CAP_MS = 1500;
/** Most the process's RSS may grow over one call (an edge function has 256 MB in all). */
const MEMORY_CAP_BYTES = 256 * 1024 * 1024;
const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? 300);
const SEED = Deno.env.get("FUZZ_SEED");
const MAX_PIXELS = 100_000_000;

const FILES = [...Deno.readDirSync(new URL("../fixtures/images/", import.meta.url))]
  .map((e) => e.name).sort();
const IMAGES = new Map<string, Uint8Array>();
for (const f of FILES) IMAGES.set(f, await fixtureBytes(f));
const provider = createLocalProvider();

/** One change to an image; positions are fractions of its length, so they fit any image. */
type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; value: number }
  | { kind: "truncate"; at: number }
  | { kind: "splice"; from: string; start: number; length: number; at: number }
  | { kind: "drop"; at: number; length: number }
  | { kind: "repeat"; at: number; length: number; times: number };

/** Mostly near the start, where headers, segment tables and IFDs live; at times anywhere. */
const position = fc.oneof(
  { arbitrary: fc.double({ min: 0, max: 0.05, noNaN: true }), weight: 3 },
  { arbitrary: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), weight: 2 },
);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("flip"), at: position, bit: fc.nat(7) }), weight: 4 },
  {
    arbitrary: fc.record({
      kind: fc.constant("set"),
      at: position,
      value: fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant("truncate"), at: position }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant("splice"),
      from: fc.constantFrom(...FILES),
      start: position,
      length: fc.integer({ min: 1, max: 4096 }),
      at: position,
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("drop"),
      at: position,
      length: fc.integer({ min: 1, max: 512 }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("repeat"),
      at: position,
      length: fc.integer({ min: 1, max: 256 }),
      times: fc.integer({ min: 2, max: 64 }),
    }),
    weight: 1,
  },
);

/** The image with the mutations applied, in order. */
export function mutate(image: Uint8Array, mutations: Mutation[]): Uint8Array {
  let bytes = image.slice();
  const index = (f: number) => Math.min(bytes.length - 1, Math.floor(f * bytes.length));
  for (const m of mutations) {
    if (bytes.length === 0) break;
    const at = index(m.at);
    switch (m.kind) {
      case "flip":
        bytes[at] ^= 1 << m.bit;
        break;
      case "set":
        bytes[at] = m.value;
        break;
      case "truncate":
        bytes = bytes.slice(0, at);
        break;
      case "splice": {
        const src = IMAGES.get(m.from)!;
        const start = Math.floor(m.start * src.length);
        const piece = src.subarray(start, start + m.length);
        const out = new Uint8Array(bytes.length + piece.length);
        out.set(bytes.subarray(0, at));
        out.set(piece, at);
        out.set(bytes.subarray(at), at + piece.length);
        bytes = out;
        break;
      }
      case "drop":
        bytes = new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(at + m.length)]);
        break;
      case "repeat": {
        const piece = bytes.slice(at, at + m.length);
        const out = new Uint8Array(bytes.length + piece.length * (m.times - 1));
        out.set(bytes.subarray(0, at));
        for (let i = 0; i < m.times; i++) out.set(piece, at + i * piece.length);
        out.set(bytes.subarray(at + piece.length), at + m.times * piece.length);
        bytes = out;
        break;
      }
    }
  }
  return bytes;
}

/** Runs one entry under the caps; `stageFacing` ones may throw a StageError, others nothing. */
async function bounded<T>(what: string, stageFacing: boolean, run: () => Promise<T> | T) {
  const rss = Deno.memoryUsage().rss;
  const start = process.cpuUsage();
  let result: T | undefined;
  try {
    result = await run();
  } catch (error) {
    if (!stageFacing || !(error instanceof StageError)) {
      throw new Error(`${what} threw ${error}`, { cause: error });
    }
    assert.ok(TASK_ERROR_CODES.includes(error.code), `${what}: ${error.code}`);
  }
  const cpu = process.cpuUsage(start);
  const ms = (cpu.user + cpu.system) / 1000;
  const grown = Deno.memoryUsage().rss - rss;
  assert.ok(ms < TIME_CAP_MS, `${what} took ${ms.toFixed(0)} ms of CPU`);
  assert.ok(grown < MEMORY_CAP_BYTES, `${what} grew RSS by ${(grown / 1e6).toFixed(0)} MB`);
  return result;
}

/** Every parser an image meets in the pipeline, in its order. */
async function everyParser(bytes: Uint8Array): Promise<void> {
  const type = await bounded("sniffImageType()", false, () => sniffImageType(bytes));
  const header = await bounded("readHeader()", true, () => readHeader(bytes, MAX_PIXELS));
  const format = header?.format ?? type?.ext ?? "jpeg";
  const { width, height } = header ?? { width: 640, height: 480 };
  await bounded("checkImageBounds()", true, () => checkImageBounds(bytes, format, width, height));
  await bounded("extractImage()", true, () => extractImage(bytes, { maxPixels: MAX_PIXELS }));
  await bounded("readRawMetadata()", false, () => readRawMetadata(bytes, format));
  await bounded(
    "extractThumbnail()",
    false,
    () => extractThumbnail(bytes, { format, width, height }),
  );
  await bounded("decodeForColors()", false, () => decodeForColors(bytes, format, width, height));
  await bounded("LocalProvider.analyze()", true, () =>
    provider.analyze({
      bytes,
      contentType: type?.mime ?? "application/octet-stream",
      width: header?.width ?? null,
      height: header?.height ?? null,
      format: header?.format ?? null,
      metadata: emptyMetadata(),
    }));
}

Deno.test({
  name:
    `every parser survives ${RUNS} mutated real images (no uncaught error, within ${TIME_CAP_MS} ms CPU and ${
      MEMORY_CAP_BYTES >> 20
    } MB each)`,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const started = performance.now();
    let runs = 0;
    const outcome = await fc.check(
      fc.asyncProperty(
        fc.constantFrom(...FILES),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        async (file, mutations) => {
          runs++;
          await everyParser(mutate(IMAGES.get(file)!, mutations));
        },
      ),
      { numRuns: RUNS, ...(SEED ? { seed: Number(SEED) } : {}) },
    );
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `${outcome.numRuns} mutated images of ${FILES.length} fixtures (seed ${outcome.seed}), ` +
        `${runs} property calls with shrinking, ${outcome.failed ? 1 : 0} failure, ${seconds} s`,
    );
    if (outcome.failed) {
      throw new Error(
        `${fc.defaultReportMessage(outcome)}\n(replay: FUZZ_SEED=${outcome.seed})`,
        { cause: outcome.errorInstance },
      );
    }
  },
});

// Regression: found by the hostile catalogue, image-size threw a RangeError reading the
// orientation from an EXIF block whose IFD0 offset points outside it, and the task failed.
Deno.test("readHeader() reads a JPEG whose EXIF IFD0 offset points outside the file", async () => {
  const jpeg = jpegWithExif(await fixtureBytes("nikon_d70.jpg"), tiffIfdOutside());
  const header = await bounded("readHeader()", true, () => readHeader(jpeg, MAX_PIXELS));
  assert.deepEqual(header, { width: 100, height: 66, format: "jpeg" }); // as exiftool reads it
  const extracted = await extractImage(jpeg, { maxPixels: MAX_PIXELS });
  assert.equal(extracted.width, 100);
  assert.equal(extracted.metadata.partial, true);
});
