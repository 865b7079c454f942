/**
 * @module tests/integration/decoder_bounds_test — one regression test per decoder bomb found: a
 * GIF frame far larger than its canvas, PNG iCCP / zTXt / iTXt chunks that inflate to 2 GiB, a
 * progressive JPEG with 100k scans, and the HEIF and TIFF structures that stalled image-size and
 * exifr. Each fails fast through the metadata stage (corrupt_image or too_large) and gets no
 * colours, quickly, from the colour decode. Before the bounds, each took minutes or gigabytes.
 */
import assert from "node:assert/strict";
import { decodeForColors } from "../../shared/ai/decode.ts";
import { StageError } from "../../shared/errors.ts";
import { MAX_JPEG_SCANS } from "../../shared/image_bounds.ts";
import { checkImageBounds } from "../../shared/metadata/bounds.ts";
import { readRawMetadata } from "../../shared/metadata/exif_read.ts";
import { extractImage } from "../../shared/metadata/extract.ts";
import { extractThumbnail } from "../../shared/metadata/thumbnail.ts";
import {
  gifFrameBomb,
  heifPropertyFlood,
  heifZeroSizeBox,
  jpegScanBomb,
  pngIccpBomb,
  pngTextBomb,
  tiffValueBomb,
} from "../_helpers/hostile_images.ts";
import { fixtureBytes } from "../_helpers/fixtures.ts";

/** Upper bound per call: generous for a loaded CI machine; the bombs took minutes. */
const TIME_CAP_MS = 2000;
const MAX_PIXELS = 100_000_000;

async function timed<T>(what: string, run: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await run();
  } finally {
    const ms = performance.now() - start;
    assert.ok(ms < TIME_CAP_MS, `${what} took ${ms.toFixed(0)} ms, over ${TIME_CAP_MS} ms`);
  }
}

async function rejectsFast(bytes: Uint8Array, codes: string[], message: RegExp): Promise<void> {
  await timed(
    "extractImage()",
    () =>
      assert.rejects(extractImage(bytes, { maxPixels: MAX_PIXELS }), (error: unknown) => {
        assert.ok(error instanceof StageError, `a StageError, got ${error}`);
        assert.ok(codes.includes(error.code), `code ${error.code}`);
        assert.equal(error.retryable, false);
        assert.match(error.message, message);
        return true;
      }),
  );
}

async function noColoursFast(bytes: Uint8Array, format: string, width: number, height: number) {
  const pixels = await timed(
    "decodeForColors()",
    () => decodeForColors(bytes, format, width, height),
  );
  assert.equal(pixels, null);
}

Deno.test("extractImage() rejects a 1x1 GIF whose frame declares 65535x65535 with corrupt_image", async () => {
  const bomb = gifFrameBomb();
  assert.equal(bomb.length, 35);
  await rejectsFast(bomb, ["corrupt_image"], /GIF frame 1 \(65535x65535 at 0,0\) does not fit/);
});

Deno.test("decodeForColors() gives null for the GIF frame bomb without decoding it", async () => {
  await noColoursFast(gifFrameBomb(), "gif", 1, 1);
});

Deno.test("extractImage() rejects a PNG whose iCCP inflates to 2 GiB with too_large", async () => {
  const bomb = pngIccpBomb();
  assert.ok(bomb.length < 3_000_000, `${bomb.length} bytes`);
  await rejectsFast(bomb, ["too_large"], /PNG iCCP chunk inflates past \d+ bytes/);
});

Deno.test("decodeForColors() gives null for the PNG iCCP bomb without inflating it", async () => {
  await noColoursFast(pngIccpBomb(), "png", 1, 1);
});

for (const kind of ["zTXt", "iTXt"] as const) {
  Deno.test(`extractImage() rejects a PNG whose ${kind} inflates to 2 GiB with too_large`, async () => {
    await rejectsFast(pngTextBomb(kind), ["too_large"], new RegExp(`PNG ${kind} chunk inflates`));
  });

  Deno.test(`decodeForColors() gives null for the PNG ${kind} bomb, quickly`, async () => {
    await noColoursFast(pngTextBomb(kind), "png", 1, 1);
  });
}

Deno.test("readRawMetadata() does not hand exifr a PNG iCCP bomb, and says why", async () => {
  const raw = await timed("readRawMetadata()", () => readRawMetadata(pngIccpBomb(), "png"));
  assert.match(raw.issues?.[0] ?? "", /iCCP chunk inflates past/);
});

Deno.test("extractImage() rejects a progressive JPEG with 100k scans with too_large", async () => {
  const bomb = jpegScanBomb();
  assert.ok(bomb.length < 1_300_000);
  await rejectsFast(bomb, ["too_large"], new RegExp(`JPEG has over ${MAX_JPEG_SCANS} scans`));
});

Deno.test("decodeForColors() gives null for the JPEG scan bomb without running jpeg-js", async () => {
  await noColoursFast(jpegScanBomb(), "jpeg", 1408, 1408);
  // Under the scan bound, scans x blocks still bounds the decode: 400 scans of 31k blocks.
  await noColoursFast(jpegScanBomb(400), "jpeg", 1408, 1408);
});

Deno.test("extractImage() rejects a HEIF with 200k ispe boxes (image-size walks them squared)", async () => {
  await rejectsFast(heifPropertyFlood(), ["too_large"], /HEIF over \d+ boxes/);
});

Deno.test("extractImage() rejects a HEIF with a zero-sized box before meta (exifr loops)", async () => {
  await rejectsFast(heifZeroSizeBox(), ["corrupt_image"], /box "free" of size 0/);
});

Deno.test("extractImage() rejects a TIFF whose IFD entries all copy one 4 MiB array", async () => {
  await rejectsFast(tiffValueBomb(), ["too_large"], /IFD values of over/);
});

Deno.test("extractThumbnail() gives null for the HEIF and TIFF bombs without running exifr", async () => {
  for (const [bytes, format] of [[heifZeroSizeBox(), "avif"], [tiffValueBomb(), "tiff"]] as const) {
    const thumb = await timed(
      "extractThumbnail()",
      () => extractThumbnail(bytes, { format, width: 16, height: 16 }),
    );
    assert.equal(thumb, null);
  }
});

Deno.test("checkImageBounds() passes every fixture and a PNG with a small real iCCP", async () => {
  for (
    const [file, format, w, h] of [
      ["nikon_gps_1.jpg", "jpeg", 640, 480],
      ["plain.png", "png", 40, 30],
      ["sample.gif", "gif", 120, 124],
      ["bush_dog.tif", "tiff", 40, 40],
      ["irvine.avif", "avif", 1, 1],
    ] as const
  ) {
    await checkImageBounds(await fixtureBytes(file), format, w, h);
  }
  await checkImageBounds(pngIccpBomb(500_000), "png", 1, 1);
  await checkImageBounds(jpegScanBomb(10, 64), "jpeg", 64, 64);
});

/**
 * Found by the property test: an AVIF whose meta box has a 64-bit size covering only iprp, with
 * iinf/iloc after it. exifr still finds the Exif item there, whose TIFF has 2238 entries of
 * 65535 SHORTs each (1.7 s of copying); the walker must find the same block and refuse it.
 */
function heifExifAfterLargeMeta(): Uint8Array {
  // ftyp, meta (size 1, largesize 36) holding iprp/ipco/ispe, iinf with an Exif infe (item 1),
  // iloc (item 1: offset 145, length 191120), then the mdat header and the Exif header offset.
  const head = [
    0,
    0,
    0,
    24,
    102,
    116,
    121,
    112,
    97,
    118,
    105,
    102,
    0,
    0,
    0,
    0,
    109,
    105,
    102,
    49,
    97,
    118,
    105,
    102,
    0,
    0,
    0,
    1,
    109,
    101,
    116,
    97,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    36,
    105,
    112,
    114,
    112,
    0,
    0,
    0,
    28,
    105,
    112,
    99,
    111,
    0,
    0,
    0,
    20,
    105,
    115,
    112,
    101,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    35,
    105,
    105,
    110,
    102,
    0,
    0,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    21,
    105,
    110,
    102,
    101,
    2,
    0,
    0,
    0,
    0,
    1,
    0,
    0,
    69,
    120,
    105,
    102,
    0,
    0,
    0,
    0,
    30,
    105,
    108,
    111,
    99,
    0,
    0,
    0,
    0,
    68,
    0,
    0,
    1,
    0,
    1,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    145,
    0,
    2,
    234,
    136,
    0,
    2,
    234,
    144,
    109,
    100,
    97,
    116,
    0,
    0,
    0,
    0,
  ];
  const entries = 2238;
  const out = new Uint8Array(191_257);
  out.set(head);
  const tiff = new DataView(out.buffer, head.length);
  tiff.setUint32(0, 0x49492a00); // "II*\0"
  tiff.setUint32(4, 8, true);
  tiff.setUint16(8, entries, true);
  for (let i = 0; i < entries; i++) {
    const at = 10 + i * 12;
    tiff.setUint16(at, 0x9000 + i, true); // tag
    tiff.setUint16(at + 2, 3, true); // SHORT
    tiff.setUint32(at + 4, 65535, true); // count
    tiff.setUint32(at + 8, 60038, true); // every entry points at the same array
  }
  return out;
}

Deno.test("extractImage() refuses an AVIF whose Exif item lies past a 64-bit-sized meta box", async () => {
  const bytes = heifExifAfterLargeMeta();
  const started = performance.now();
  const err = await extractImage(bytes, { maxPixels: 100_000_000 }).then(
    () => null,
    (e) => e,
  );
  assert.ok(err instanceof StageError, String(err));
  assert.ok(["corrupt_image", "too_large"].includes(err.code), err.code);
  const t = performance.now();
  await readRawMetadata(bytes, "avif");
  assert.ok(performance.now() - t < 500, "exifr is not run on the unbounded block");
  assert.ok(performance.now() - started < 2000);
});
