/**
 * @module tests/integration/metadata_fixtures_test — extractImage() against every fixture image
 * in tests/fixtures, checked with exiftool's values (oracle.json), plus WebP EXIF, corrupt
 * and oversized input.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { extractImage } from "../../shared/metadata/extract.ts";
import { StageError } from "../../shared/errors.ts";
import type { ExtractedImage } from "../../shared/metadata/types.ts";
import { fixtureBytes, loadOracle, type OracleImage } from "../_helpers/fixtures.ts";

const MAX_PIXELS = 100_000_000;
const ORACLE = await loadOracle();
const FORMAT_OF_MIME: Record<string, string> = {
  "image/jpeg": "jpeg",
  "image/png": "png",
  "image/gif": "gif",
  "image/tiff": "tiff",
  "image/webp": "webp",
  "image/avif": "avif",
  "image/heic": "heic",
};

function oracle(file: string): OracleImage {
  const found = ORACLE.find((o) => o.file === file);
  assert.ok(found, `${file} is in oracle.json`);
  return found;
}

async function extract(file: string): Promise<ExtractedImage> {
  return await extractImage(await fixtureBytes(file), { maxPixels: MAX_PIXELS });
}

/** Every string anywhere in `value`. */
function strings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (value === null || typeof value !== "object") return [];
  return Object.values(value).flatMap(strings);
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof StageError, `a StageError, got ${error}`);
    assert.equal(error.code, code);
    assert.equal(error.retryable, false);
    return true;
  });
}

for (const expected of ORACLE) {
  Deno.test(`extractImage() matches exiftool on ${expected.file}`, async () => {
    const image = await extract(expected.file);
    const { metadata } = image;
    assert.equal(image.width, expected.width, "width");
    assert.equal(image.height, expected.height, "height");
    assert.equal(image.format, FORMAT_OF_MIME[expected.mimeType], "format");
    assert.equal(metadata.make, expected.make, "make");
    assert.equal(metadata.model, expected.model, "model");
    assert.equal(metadata.takenAt, expected.takenAt, "takenAt");
    assert.equal(metadata.orientation, expected.orientation, "orientation");
    if (expected.gps === null) {
      assert.equal(metadata.gps, null, "gps");
    } else {
      assert.ok(metadata.gps, "gps");
      assert.ok(Math.abs(metadata.gps.lat - expected.gps.lat) < 1e-6, "gps.lat");
      assert.ok(Math.abs(metadata.gps.lon - expected.gps.lon) < 1e-6, "gps.lon");
    }
  });

  Deno.test(`extractImage() gives jsonb-safe metadata for ${expected.file}`, async () => {
    const { metadata } = await extract(expected.file);
    const text = JSON.stringify(metadata);
    assert.ok(!text.includes("\\u0000"), "no NUL escapes");
    assert.ok(text.isWellFormed(), "no lone surrogates");
    assert.ok(text.length < 100_000, `small enough: ${text.length}`);
    assert.deepStrictEqual(JSON.parse(text), metadata, "round-trips");
    for (const s of strings(metadata)) assert.ok(s.length <= 501, `string of ${s.length}`);
    assert.equal(typeof metadata.partial, "boolean");
  });
}

Deno.test("extractImage() reads GPS of nikon_gps_1.jpg as signed degrees", async () => {
  const { metadata } = await extract("nikon_gps_1.jpg");
  assert.ok(metadata.gps);
  assert.ok(Math.abs(metadata.gps.lat - 43.4670816666639) < 1e-6);
  assert.ok(Math.abs(metadata.gps.lon - 11.8845383333306) < 1e-6);
  assert.equal(metadata.partial, false);
});

Deno.test("extractImage() keeps the encoded dimensions of orientation_6.jpg", async () => {
  const image = await extract("orientation_6.jpg");
  assert.deepEqual([image.width, image.height, image.metadata.orientation], [450, 600, 6]);
});

Deno.test("extractImage() reads EXIF takenAt of nikon_d70.jpg, not its XMP one", async () => {
  const { metadata } = await extract("nikon_d70.jpg");
  assert.equal(metadata.takenAt, "2008-03-15T09:52:01");
  const xmp = metadata.exif.xmp as Record<string, Record<string, unknown>>;
  assert.equal(xmp.exif.DateTimeOriginal, "2008-03-15T09:52:01-04:00");
});

Deno.test("extractImage() keeps no thumbnail and no binary blob in exif", async () => {
  const { metadata } = await extract("canon_powershot_s40.jpg");
  assert.equal(metadata.exif.ifd1, undefined);
  const exif = metadata.exif.exif as Record<string, unknown>;
  assert.equal(exif.ExifVersion, "0220");
  assert.equal(exif.MakerNote, undefined);
});

Deno.test("extractImage() flags invalid_exif.jpg partial and still gives its dimensions", async () => {
  const image = await extract("invalid_exif.jpg");
  assert.deepEqual([image.width, image.height, image.format], [61, 58, "jpeg"]);
  assert.equal(image.metadata.partial, true);
  assert.ok(Array.isArray(image.metadata.exif.errors));
});

Deno.test("extractImage() reads a GIF without failing although exifr cannot", async () => {
  const image = await extract("sample.gif");
  assert.deepEqual([image.width, image.height, image.format], [120, 124, "gif"]);
  assert.equal(image.metadata.partial, false);
  assert.deepEqual(image.metadata.exif, {});
});

Deno.test("extractImage() rejects too many pixels with too_large", async () => {
  await rejectsWith(
    extractImage(await fixtureBytes("nikon_gps_1.jpg"), { maxPixels: 100 }),
    "too_large",
  );
  await rejectsWith(
    extractImage(await fixtureBytes("sample.gif"), { maxPixels: 100 }),
    "too_large",
  );
});

Deno.test("extractImage() rejects random bytes with corrupt_image", async () => {
  let seed = 42;
  const random = Uint8Array.from(
    { length: 4096 },
    () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24,
  );
  await rejectsWith(extractImage(random, { maxPixels: MAX_PIXELS }), "corrupt_image");
  await rejectsWith(extractImage(new Uint8Array(0), { maxPixels: MAX_PIXELS }), "corrupt_image");
  await rejectsWith(extractImage(new Uint8Array(64), { maxPixels: MAX_PIXELS }), "corrupt_image");
});

Deno.test("extractImage() rejects a JPEG truncated before its frame header with corrupt_image", async () => {
  const jpeg = await fixtureBytes("nikon_d70.jpg");
  await rejectsWith(
    extractImage(jpeg.subarray(0, 200), { maxPixels: MAX_PIXELS }),
    "corrupt_image",
  );
  await rejectsWith(extractImage(jpeg.subarray(0, 3), { maxPixels: MAX_PIXELS }), "corrupt_image");
});

Deno.test("extractImage() on truncated or mangled fixtures resolves or throws a StageError", async () => {
  const files = await Promise.all(ORACLE.map((o) => fixtureBytes(o.file)));
  await fc.assert(
    fc.asyncProperty(
      fc.nat(files.length - 1),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 8 }),
      async (which, cut, flips) => {
        const bytes = files[which].slice(0, Math.floor(files[which].length * cut));
        for (const [at, value] of flips) if (bytes.length) bytes[at % bytes.length] = value;
        try {
          const image = await extractImage(bytes, { maxPixels: MAX_PIXELS });
          JSON.parse(JSON.stringify(image));
        } catch (error) {
          assert.ok(error instanceof StageError, `a StageError, got ${error}`);
          assert.ok(["corrupt_image", "too_large"].includes(error.code));
        }
      },
    ),
    { numRuns: 150 },
  );
});

// ---- WebP: exifr does not read its EXIF chunk; extractImage hands it the TIFF block itself.

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** The payload of the first "Exif" APP1 segment of a JPEG, "Exif\0\0" included. */
function jpegExifPayload(jpeg: Uint8Array): Uint8Array {
  for (let at = 2; at + 4 < jpeg.length;) {
    const length = (jpeg[at + 2] << 8) | jpeg[at + 3];
    const payload = jpeg.subarray(at + 4, at + 2 + length);
    if (jpeg[at + 1] === 0xe1 && String.fromCharCode(...payload.subarray(0, 4)) === "Exif") {
      return payload;
    }
    at += 2 + length;
  }
  throw new Error("no EXIF APP1");
}

/** A WebP (VP8X header only) of `width` x `height` with the given EXIF chunk payload. */
function webpWithExif(width: number, height: number, exif: Uint8Array): Uint8Array {
  const chunks: Uint8Array[] = [];
  const chunk = (id: string, payload: Uint8Array) => {
    const head = new Uint8Array(8);
    head.set(ascii(id));
    new DataView(head.buffer).setUint32(4, payload.length, true);
    chunks.push(head, payload, new Uint8Array(payload.length & 1));
  };
  const vp8x = new Uint8Array(10);
  vp8x[0] = 0x08; // EXIF present
  const w = width - 1, h = height - 1;
  vp8x.set([w & 255, (w >> 8) & 255, w >> 16, h & 255, (h >> 8) & 255, h >> 16], 4);
  chunk("VP8X", vp8x);
  chunk("EXIF", exif);
  const body = chunks.reduce((n, c) => n + c.length, 0) + 4;
  const out = new Uint8Array(8 + body);
  out.set(ascii("RIFF"));
  new DataView(out.buffer).setUint32(4, body, true);
  out.set(ascii("WEBP"), 8);
  let at = 12;
  for (const c of chunks) (out.set(c, at), at += c.length);
  return out;
}

Deno.test("extractImage() reads the EXIF chunk of a WebP", async () => {
  const expected = oracle("nikon_gps_1.jpg");
  const payload = jpegExifPayload(await fixtureBytes("nikon_gps_1.jpg"));
  for (const exif of [payload.subarray(6), payload]) { // bare TIFF, and with "Exif\0\0"
    const image = await extractImage(webpWithExif(640, 480, exif), { maxPixels: MAX_PIXELS });
    assert.deepEqual([image.width, image.height, image.format], [640, 480, "webp"]);
    assert.equal(image.metadata.make, expected.make);
    assert.equal(image.metadata.model, expected.model);
    assert.equal(image.metadata.takenAt, expected.takenAt);
    assert.ok(image.metadata.gps && Math.abs(image.metadata.gps.lat - expected.gps!.lat) < 1e-6);
    assert.equal(image.metadata.partial, false);
  }
});

Deno.test("extractImage() flags a WebP with a broken EXIF chunk partial", async () => {
  const image = await extractImage(webpWithExif(10, 20, ascii("not a tiff block")), {
    maxPixels: MAX_PIXELS,
  });
  assert.deepEqual([image.width, image.height, image.format], [10, 20, "webp"]);
  assert.equal(image.metadata.partial, true);
  assert.equal(image.metadata.make, null);
});
