/**
 * @module tests/integration/local_ai_test — the local provider on every fixture image (with the
 * metadata extractImage() gives it), on synthetic and broken input, and its pure parts.
 */
import assert from "node:assert/strict";
import jpeg from "jpeg-js";
import { encode as encodePng } from "fast-png";
import { createLocalProvider, LOCAL_MODEL } from "../../shared/ai/local.ts";
import { COLOR_NAMES, colorName, dominantColors } from "../../shared/ai/colors.ts";
import { describeCaption, describeTags, type ImageFacts } from "../../shared/ai/describe.ts";
import {
  aspectOf,
  cameraBrand,
  cameraLabel,
  displayedSize,
  takenParts,
  timeOfDay,
} from "../../shared/ai/facts.ts";
import { lastCompleteBlockEnd, pickFrame, trimGif } from "../../shared/ai/gif_frames.ts";
import { expectedPngBytes, pngInflatesWithinHeader } from "../../shared/ai/png_guard.ts";
import type { Analysis, AnalysisInput } from "../../shared/ai/types.ts";
import { StageError } from "../../shared/errors.ts";
import { extractImage } from "../../shared/metadata/extract.ts";
import { emptyMetadata, type ImageMetadata } from "../../shared/metadata/types.ts";
import { fixtureBytes, loadOracle } from "../_helpers/fixtures.ts";

const ORACLE = await loadOracle();
const provider = createLocalProvider();
const EMPTY_METADATA: ImageMetadata = emptyMetadata();

async function fixtureInput(file: string, mimeType: string): Promise<AnalysisInput> {
  const bytes = await fixtureBytes(file);
  const image = await extractImage(bytes, { maxPixels: 100_000_000 });
  return { bytes, contentType: mimeType, ...image };
}

function assertWellFormed(analysis: Analysis): void {
  assert.equal(analysis.provider, "local");
  assert.equal(analysis.model, LOCAL_MODEL);
  assert.ok(analysis.tags.length >= 3 && analysis.tags.length <= 10, `3-10 tags: ${analysis.tags}`);
  assert.equal(new Set(analysis.tags).size, analysis.tags.length, "unique tags");
  for (const tag of analysis.tags) assert.match(tag, /^[a-z0-9]+(-[a-z0-9]+)*$/);
  assert.match(analysis.caption, /^Colour and metadata summary: .+\.$/);
  assert.deepEqual(analysis.safety, { adult: false, violence: false, selfHarm: false });
  assert.equal(analysis.usage, null);
  // Every tag says what produced it, and nothing restates the file's format or size class.
  assert.deepEqual(Object.keys(analysis.tagSources ?? {}).sort(), [...analysis.tags].sort());
  for (const tag of analysis.tags) {
    const source = analysis.tagSources?.[tag];
    assert.ok(source === "metadata" || source === "colour", `${tag}: ${source}`);
    assert.equal(
      source === "colour",
      colorTags(analysis).includes(tag) || tag === "colours-not-measured",
    );
  }
  for (const word of RESTATING) {
    assert.ok(!analysis.tags.includes(word), `${word} in ${analysis.tags}`);
  }
  assert.equal(analysis.colours?.reason === null, colorTags(analysis).length > 0);
}

/** Tags that only restate the file, or name an aspect ratio as if it were the content. */
const RESTATING = [
  "jpeg",
  "png",
  "gif",
  "tiff",
  "avif",
  "thumbnail",
  "small",
  "medium",
  "large",
  "landscape",
  "portrait",
  "square",
  "panorama",
  "image",
];

const colorTags = (a: Analysis) =>
  a.tags.filter((t) => (COLOR_NAMES as readonly string[]).includes(t));

for (const { file, mimeType } of ORACLE) {
  Deno.test(`LocalProvider.analyze() is well-formed and deterministic on ${file}`, async () => {
    const input = await fixtureInput(file, mimeType);
    const first = await provider.analyze(input);
    const second = await provider.analyze(input);
    assertWellFormed(first);
    assert.deepEqual(second, first);
    if (["image/jpeg", "image/png", "image/gif"].includes(mimeType)) {
      assert.ok(colorTags(first).length > 0, `colour tags for ${file}: ${first.tags}`);
    } else {
      // TIFF and AVIF: no pure-JS decoder here and no embedded preview in these files.
      assert.deepEqual(colorTags(first), []);
      assert.ok(first.tags.includes("colours-not-measured"));
      assert.equal(first.colours?.from, null);
      assert.match(first.colours?.reason ?? "", /^no (TIFF|AVIF) decoder in the offline provider/);
      assert.ok(first.caption.includes(`colours not measured (${first.colours?.reason})`));
    }
  });
}

Deno.test("createLocalProvider() names itself local, model darkroom-local-1", () => {
  assert.equal(provider.name, "local");
  assert.equal(provider.model, "darkroom-local-1");
});

Deno.test("LocalProvider.analyze() tags nikon_gps_1.jpg from its metadata and colours", async () => {
  const analysis = await provider.analyze(await fixtureInput("nikon_gps_1.jpg", "image/jpeg"));
  // A park on an autumn afternoon: green foliage, a brown trunk and path, a pale gravel path.
  assert.deepEqual(analysis.tags, [
    "wide-aspect",
    "green",
    "brown",
    "gray",
    "nikon",
    "geotagged",
    "afternoon",
  ]);
  assert.deepEqual(analysis.tagSources, {
    "wide-aspect": "metadata",
    green: "colour",
    brown: "colour",
    gray: "colour",
    nikon: "metadata",
    geotagged: "metadata",
    afternoon: "metadata",
  });
  assert.equal(
    analysis.caption,
    "Colour and metadata summary: wide aspect; mostly green, brown and gray (from the embedded preview); taken with a NIKON COOLPIX P6000 on an October afternoon; geotagged.",
  );
  assert.deepEqual(analysis.colours, { from: "embedded-thumbnail", reason: null });
});

Deno.test("LocalProvider.analyze() reads the green waterfall (orientation_6.jpg) as green, wide once rotated", async () => {
  // Ferns and foliage round a white waterfall, much of it in deep shadow, a few red flowers:
  // the shadows are not named black, since they do not dominate the picture.
  const analysis = await provider.analyze(await fixtureInput("orientation_6.jpg", "image/jpeg"));
  assert.deepEqual(colorTags(analysis), ["green", "gray"]);
  assert.ok(analysis.tags.includes("wide-aspect"), `${analysis.tags}`);
  assert.ok(!analysis.tags.includes("tall-aspect"));
  assert.deepEqual(analysis.colours, { from: "image", reason: null });
});

Deno.test("LocalProvider.analyze() reads plain.png (blue sky over a dry field) as blue first", async () => {
  const analysis = await provider.analyze(await fixtureInput("plain.png", "image/png"));
  assert.deepEqual(colorTags(analysis), ["blue", "brown", "gray"]);
  assert.ok(analysis.tags.includes("no-camera-metadata"));
});

Deno.test("LocalProvider.analyze() sees orientation_3.jpg as tall (180° keeps the shape)", async () => {
  const analysis = await provider.analyze(await fixtureInput("orientation_3.jpg", "image/jpeg"));
  assert.ok(analysis.tags.includes("tall-aspect"), `${analysis.tags}`);
});

/** A 640x480 JPEG, no EXIF, blue sky over green ground. */
function syntheticJpeg(): Uint8Array {
  const width = 640, height = 480;
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      data.set(y < 300 ? [40, 90, 220, 255] : [40, 160, 50, 255], i);
    }
  }
  return new Uint8Array(jpeg.encode({ width, height, data }, 80).data);
}

Deno.test("LocalProvider.analyze() decodes a 640x480 JPEG in full for its colours", async () => {
  const bytes = syntheticJpeg();
  const analysis = await provider.analyze({
    bytes,
    contentType: "image/jpeg",
    width: 640,
    height: 480,
    format: "jpeg",
    metadata: EMPTY_METADATA,
  });
  assertWellFormed(analysis);
  assert.deepEqual(analysis.tags, ["wide-aspect", "blue", "green", "no-camera-metadata"]);
  assert.equal(
    analysis.caption,
    "Colour and metadata summary: wide aspect; mostly blue and green; no camera metadata.",
  );
});

Deno.test("LocalProvider.analyze() skips colours of a JPEG over the decode limit", async () => {
  const analysis = await provider.analyze({
    bytes: syntheticJpeg(),
    contentType: "image/jpeg",
    width: 4000,
    height: 3000,
    format: "jpeg",
    metadata: EMPTY_METADATA,
  });
  assert.deepEqual(analysis.tags, ["wide-aspect", "colours-not-measured", "no-camera-metadata"]);
  assert.deepEqual(analysis.colours, {
    from: null,
    reason: "the JPEG image is too large to decode within the CPU budget",
  });
});

Deno.test("LocalProvider.analyze() reads a PNG's colours, alpha and all", async () => {
  const data = new Uint8Array(20 * 20 * 4);
  for (let i = 0; i < data.length; i += 4) {
    data.set(i < data.length / 2 ? [255, 0, 0, 255] : [0, 0, 255, 0], i);
  }
  const bytes = encodePng({ width: 20, height: 20, data, channels: 4, depth: 8 });
  const analysis = await provider.analyze({
    bytes,
    contentType: "image/png",
    width: null,
    height: null,
    format: null,
    metadata: EMPTY_METADATA,
  });
  assert.deepEqual(analysis.tags, ["square-aspect", "red", "no-camera-metadata"]);
});

Deno.test("LocalProvider.analyze() never throws on broken input", async () => {
  const real = await fixtureBytes("nikon_gps_1.jpg");
  const weird: [Uint8Array, string, string | null][] = [
    [new Uint8Array(0), "image/jpeg", "jpeg"],
    [new Uint8Array(1000).fill(0xff), "image/png", "png"],
    [real.subarray(0, 4000), "image/jpeg", "jpeg"],
    [real.subarray(0, 20_000), "image/jpeg", null],
    [Uint8Array.from({ length: 5000 }, (_, i) => (i * 7919) & 255), "image/gif", "gif"],
    [new TextEncoder().encode("GIF89a garbage"), "image/gif", "gif"],
  ];
  for (const [bytes, contentType, format] of weird) {
    const analysis = await provider.analyze({
      bytes,
      contentType,
      width: format ? 300 : null,
      height: format ? 200 : null,
      format,
      metadata: { ...EMPTY_METADATA, orientation: 99, takenAt: "garbage", make: "" },
    });
    assertWellFormed(analysis);
  }
});

Deno.test("LocalProvider.analyze() throws a retryable ai_error when aborted", async () => {
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(
    provider.analyze({
      bytes: syntheticJpeg(),
      contentType: "image/jpeg",
      width: 640,
      height: 480,
      format: "jpeg",
      metadata: EMPTY_METADATA,
      signal: controller.signal,
    }),
    (error: unknown) => error instanceof StageError && error.code === "ai_error" && error.retryable,
  );
});

// ---- pure parts

Deno.test("colorName() names primaries, greys and browns", () => {
  assert.equal(colorName(230, 20, 20), "red");
  assert.equal(colorName(20, 200, 40), "green");
  assert.equal(colorName(30, 60, 220), "blue");
  assert.equal(colorName(250, 220, 30), "yellow");
  assert.equal(colorName(250, 140, 20), "orange");
  assert.equal(colorName(130, 40, 200), "purple");
  assert.equal(colorName(250, 150, 200), "pink");
  assert.equal(colorName(120, 70, 30), "brown");
  assert.equal(colorName(5, 5, 5), "black");
  assert.equal(colorName(250, 250, 250), "white");
  assert.equal(colorName(128, 128, 128), "gray");
});

Deno.test("dominantColors() ranks hues first, names black and white only when they dominate", () => {
  const px = (rgba: number[], n: number) => Array.from({ length: n }, () => rgba).flat();
  const data = [
    ...px([0, 0, 255, 255], 60),
    ...px([255, 0, 0, 255], 30),
    ...px([0, 255, 0, 255], 10),
  ];
  assert.deepEqual(dominantColors(data), ["blue", "red"]);
  // Deep shadow (35 %) and dark foliage: the shadow is not named, the foliage is.
  const shadowed = [
    ...px([10, 12, 8, 255], 35),
    ...px([30, 60, 20, 255], 50),
    ...px([120, 120, 120, 255], 15),
  ];
  assert.deepEqual(dominantColors(shadowed), ["green", "gray"]);
  // A night scene that is mostly black says so, after its hue.
  assert.deepEqual(dominantColors([...px([5, 5, 5, 255], 70), ...px([200, 160, 20, 255], 30)]), [
    "yellow",
    "black",
  ]);
  assert.deepEqual(dominantColors(px([255, 255, 255, 255], 10)), ["white"]);
  assert.deepEqual(dominantColors(px([255, 0, 0, 0], 10)), []);
  assert.deepEqual(dominantColors([]), []);
});

Deno.test("colorName() keeps dark but saturated colours as hues, dull darks as black", () => {
  assert.equal(colorName(19, 24, 8), "green"); // foliage in shadow
  assert.equal(colorName(36, 32, 43), "black"); // near-neutral dark
  assert.equal(colorName(221, 219, 226), "gray");
  assert.equal(colorName(71, 115, 175), "blue");
});

Deno.test("displayedSize() swaps width and height for orientations 5-8 only", () => {
  assert.deepEqual(displayedSize(450, 600, 6), { width: 600, height: 450 });
  assert.deepEqual(displayedSize(450, 600, 3), { width: 450, height: 600 });
  assert.deepEqual(displayedSize(450, 600, null), { width: 450, height: 600 });
});

Deno.test("aspectOf() names the aspect ratio as a ratio", () => {
  assert.equal(aspectOf(640, 480), "wide-aspect");
  assert.equal(aspectOf(480, 640), "tall-aspect");
  assert.equal(aspectOf(120, 124), "square-aspect");
  assert.equal(aspectOf(3000, 1000), "very-wide-aspect");
  assert.equal(aspectOf(1000, 3000), "very-tall-aspect");
  assert.equal(aspectOf(0, 10), null);
});

Deno.test("cameraBrand() normalises makes to lowercase brands", () => {
  assert.equal(cameraBrand("NIKON CORPORATION"), "nikon");
  assert.equal(cameraBrand("Canon"), "canon");
  assert.equal(cameraBrand("KONICA MINOLTA"), "konica-minolta");
  assert.equal(cameraBrand("FUJI PHOTO FILM CO., LTD."), "fujifilm");
  assert.equal(cameraBrand("EASTMAN KODAK COMPANY"), "kodak");
  assert.equal(cameraBrand("OLYMPUS IMAGING CORP."), "olympus");
  assert.equal(cameraBrand(""), null);
  assert.equal(cameraBrand(null), null);
});

Deno.test("cameraLabel() does not repeat the make", () => {
  assert.equal(cameraLabel("NIKON CORPORATION", "NIKON D70"), "NIKON D70");
  assert.equal(cameraLabel("NIKON", "COOLPIX P6000"), "NIKON COOLPIX P6000");
  assert.equal(cameraLabel(null, "E950"), "E950");
  assert.equal(cameraLabel("SONY", null), "SONY");
});

Deno.test("takenParts() and timeOfDay() read the capture time", () => {
  assert.deepEqual(takenParts("2008-10-22T16:38:20"), { month: "October", hour: 16 });
  assert.deepEqual(takenParts("2008-03-15T09:52:01+02:00"), { month: "March", hour: 9 });
  assert.equal(takenParts("garbage"), null);
  assert.equal(takenParts(null), null);
  assert.deepEqual([4, 5, 11, 12, 16, 17, 20, 21].map(timeOfDay), [
    "night",
    "morning",
    "morning",
    "afternoon",
    "afternoon",
    "evening",
    "evening",
    "night",
  ]);
});

const FACTS: ImageFacts = {
  aspect: "wide-aspect",
  colors: ["green", "blue"],
  colourFrom: "image",
  colourReason: null,
  brand: "nikon",
  camera: "NIKON COOLPIX P6000",
  taken: { month: "October", hour: 16 },
  geotagged: true,
};

Deno.test("describeCaption() says what it is based on", () => {
  assert.equal(
    describeCaption(FACTS),
    "Colour and metadata summary: wide aspect; mostly green and blue; taken with a NIKON COOLPIX P6000 on an October afternoon; geotagged.",
  );
  assert.equal(
    describeCaption({ ...FACTS, camera: null, brand: null, geotagged: false, colors: [] }),
    "Colour and metadata summary: wide aspect; colours not measured; taken on an October afternoon.",
  );
  assert.equal(
    describeCaption({
      ...FACTS,
      camera: "Apple iPhone 3GS",
      taken: null,
      colors: ["red", "white", "gray"],
      colourFrom: "embedded-thumbnail",
    }),
    "Colour and metadata summary: wide aspect; mostly red, white and gray (from the embedded preview); taken with an Apple iPhone 3GS; geotagged.",
  );
  assert.equal(
    describeCaption({
      ...FACTS,
      aspect: null,
      camera: null,
      taken: null,
      colors: [],
      colourFrom: null,
      colourReason: "no TIFF decoder",
      geotagged: false,
    }),
    "Colour and metadata summary: aspect unknown; colours not measured (no TIFF decoder); no camera metadata.",
  );
});

Deno.test("describeTags() orders tags by a fixed rule, each with its source, and says what is missing", () => {
  assert.deepEqual(describeTags(FACTS), {
    tags: ["wide-aspect", "green", "blue", "nikon", "geotagged", "afternoon"],
    tagSources: {
      "wide-aspect": "metadata",
      green: "colour",
      blue: "colour",
      nikon: "metadata",
      geotagged: "metadata",
      afternoon: "metadata",
    },
  });
  const none: ImageFacts = {
    aspect: null,
    colors: [],
    colourFrom: null,
    colourReason: null,
    brand: null,
    camera: null,
    taken: null,
    geotagged: false,
  };
  assert.deepEqual(describeTags(none), {
    tags: ["unknown-aspect", "colours-not-measured", "no-camera-metadata"],
    tagSources: {
      "unknown-aspect": "metadata",
      "colours-not-measured": "colour",
      "no-camera-metadata": "metadata",
    },
  });
  assert.deepEqual(describeTags({ ...none, camera: "E950" }).tags, [
    "unknown-aspect",
    "colours-not-measured",
    "camera-model-only",
  ]);
});

Deno.test("trimGif() cuts trailing garbage after the last complete block", () => {
  const header = [..."GIF89a"].map((c) => c.charCodeAt(0));
  const screen = [1, 0, 1, 0, 0, 0, 0]; // 1x1, no colour table
  const image = [0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4c, 0x01, 0];
  const clean = Uint8Array.from([...header, ...screen, ...image, 0x3b]);
  assert.equal(trimGif(clean), clean);
  const dirty = Uint8Array.from([...header, ...screen, ...image, 0x38, 0x99, 0x12]);
  assert.deepEqual(trimGif(dirty), clean);
  assert.equal(lastCompleteBlockEnd(new Uint8Array(20)), null);
});

Deno.test("pickFrame() prefers the first frame covering half the canvas", () => {
  const f = (width: number, height: number) => ({ x: 0, y: 0, width, height });
  assert.equal(pickFrame([f(1, 1), f(120, 124), f(120, 124)], 120, 124), 1);
  assert.equal(pickFrame([f(1, 1), f(10, 10), f(20, 20)], 120, 124), 2);
  assert.equal(pickFrame([], 10, 10), 0);
});

/** A 10x10 RGB PNG whose IDAT inflates to `inflated` zero bytes (CRCs left zero). */
async function pngWithIdatOf(inflated: number): Promise<Uint8Array> {
  const zlib = new Uint8Array(
    await new Response(
      new Blob([new Uint8Array(inflated)]).stream().pipeThrough(new CompressionStream("deflate")),
    ).arrayBuffer(),
  );
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.length);
    out.set([...type].map((c) => c.charCodeAt(0)), 4);
    out.set(data, 8);
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, 10);
  new DataView(ihdr.buffer).setUint32(4, 10);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const parts = [
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", zlib),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
}

Deno.test("pngInflatesWithinHeader() accepts real PNGs and rejects a decompression bomb", async () => {
  assert.equal(await pngInflatesWithinHeader(await fixtureBytes("plain.png")), true);
  assert.equal(await pngInflatesWithinHeader(await pngWithIdatOf(10 * 31)), true);
  const bomb = await pngWithIdatOf(64 * 1024 * 1024);
  assert.ok(bomb.length < 200_000);
  assert.equal(await pngInflatesWithinHeader(bomb), false);
  assert.equal(await pngInflatesWithinHeader(new Uint8Array(100)), false);
  assert.equal(expectedPngBytes(10, 10, 8, 2), 310 + 39 + 65536);
  assert.equal(expectedPngBytes(10, 10, 8, 5), null);
});

Deno.test("LocalProvider.analyze() gives no colour tags for a PNG bomb, and does not blow up", async () => {
  const analysis = await provider.analyze({
    bytes: await pngWithIdatOf(64 * 1024 * 1024),
    contentType: "image/png",
    width: 10,
    height: 10,
    format: "png",
    metadata: EMPTY_METADATA,
  });
  assert.deepEqual(analysis.tags, [
    "square-aspect",
    "colours-not-measured",
    "no-camera-metadata",
  ]);
  assert.match(analysis.colours?.reason ?? "", /would inflate past its header's size/);
});
