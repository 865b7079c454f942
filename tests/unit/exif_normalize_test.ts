/**
 * @module tests/unit/exif_normalize_test — the pure metadata mapping: exifr output to
 * ImageMetadata, the JSON-safe exif copy, and the container probes (JPEG APP1, WebP chunks,
 * HEIF brands). No I/O.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  buildExifJson,
  cleanText,
  dmsToDegrees,
  normalizeMetadata,
  parseGps,
  parseOrientation,
  parseTakenAt,
} from "../../shared/metadata/exif_normalize.ts";
import { cleanString, toJsonSafe } from "../../shared/metadata/exif_json.ts";
import {
  app1Kind,
  isTiffBlock,
  jpegApp1Kinds,
  jpegExifIssues,
} from "../../shared/metadata/jpeg_segments.ts";
import { stripExifPrefix, webpMetadataChunks } from "../../shared/metadata/webp_exif.ts";
import { formatName, heifFormat } from "../../shared/metadata/dimensions.ts";

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
};
/** A little-endian TIFF block with one IFD0 entry (Orientation = 6). */
const TIFF = Uint8Array.from([
  0x49,
  0x49,
  0x2a,
  0,
  8,
  0,
  0,
  0, // header, IFD0 at 8
  1,
  0, // one entry
  0x12,
  0x01,
  3,
  0,
  1,
  0,
  0,
  0,
  6,
  0,
  0,
  0, // Orientation SHORT 1 = 6
  0,
  0,
  0,
  0, // no next IFD
]);

Deno.test("parseTakenAt() turns EXIF local time into ISO local time", () => {
  assert.equal(parseTakenAt("2008:03:15 09:52:01"), "2008-03-15T09:52:01");
  assert.equal(parseTakenAt("2008:03:15 09:52:01\u0000 "), "2008-03-15T09:52:01");
  assert.equal(parseTakenAt("2008-03-15T09:52:01"), "2008-03-15T09:52:01");
});

Deno.test("parseTakenAt() appends a valid OffsetTimeOriginal only", () => {
  assert.equal(parseTakenAt("2008:03:15 09:52:01", "+02:00"), "2008-03-15T09:52:01+02:00");
  assert.equal(parseTakenAt("2008:03:15 09:52:01", "-05:30"), "2008-03-15T09:52:01-05:30");
  assert.equal(parseTakenAt("2008:03:15 09:52:01", "02:00"), "2008-03-15T09:52:01");
  assert.equal(parseTakenAt("2008:03:15 09:52:01", "+25:00"), "2008-03-15T09:52:01");
  assert.equal(parseTakenAt("2008:03:15 09:52:01", 120), "2008-03-15T09:52:01");
});

Deno.test("parseTakenAt() rejects blank, zero and malformed dates", () => {
  for (
    const bad of ["", "    :  :     :  :  ", "0000:00:00 00:00:00", "2008:13:01 00:00:00", "x"]
  ) {
    assert.equal(parseTakenAt(bad), null, bad);
  }
  assert.equal(parseTakenAt(undefined), null);
  assert.equal(parseTakenAt(1205574721), null);
  assert.equal(parseTakenAt(new Date(Number.NaN)), null);
});

Deno.test("parseTakenAt() reads a revived Date back in the zone it was revived in", () => {
  assert.equal(parseTakenAt(new Date(2008, 2, 15, 9, 52, 1)), "2008-03-15T09:52:01");
});

Deno.test("parseOrientation() keeps integers 1-8 and maps exifr's names", () => {
  assert.equal(parseOrientation(6), 6);
  assert.equal(parseOrientation(1), 1);
  assert.equal(parseOrientation("Rotate 90 CW"), 6);
  assert.equal(parseOrientation("Horizontal (normal)"), 1);
  assert.equal(parseOrientation("8"), 8);
  for (const bad of [0, 9, 1.5, -1, Number.NaN, "sideways", null, undefined, [6]]) {
    assert.equal(parseOrientation(bad), null, String(bad));
  }
});

Deno.test("cleanText() trims spaces and NULs and maps empty to null", () => {
  assert.equal(cleanText("NIKON CORPORATION\u0000\u0000"), "NIKON CORPORATION");
  assert.equal(cleanText("  Canon  "), "Canon");
  assert.equal(cleanText("\u0000 \u0000"), null);
  assert.equal(cleanText(42), null);
  assert.equal(cleanText("x".repeat(500))?.length, 100);
});

Deno.test("dmsToDegrees() sums degrees, minutes and seconds", () => {
  assert.equal(dmsToDegrees([43, 30, 0]), 43.5);
  assert.equal(dmsToDegrees([10]), 10);
  assert.equal(dmsToDegrees(12.25), 12.25);
  assert.equal(dmsToDegrees([]), null);
  assert.equal(dmsToDegrees([1, 2, 3, 4]), null);
  assert.equal(dmsToDegrees([43, -1, 0]), null);
  assert.equal(dmsToDegrees("43"), null);
});

Deno.test("parseGps() signs south and west negative", () => {
  const gps = {
    GPSLatitudeRef: "S",
    GPSLatitude: [33, 51, 36],
    GPSLongitudeRef: "W",
    GPSLongitude: [70, 40, 12],
  };
  const pos = parseGps(gps);
  assert.ok(pos);
  assert.ok(Math.abs(pos.lat - -33.86) < 1e-9);
  assert.ok(Math.abs(pos.lon - -70.67) < 1e-9);
  const north = parseGps({ ...gps, GPSLatitudeRef: "N", GPSLongitudeRef: "E" });
  assert.ok(north && north.lat > 0 && north.lon > 0);
});

Deno.test("parseGps() is null when absent, out of range or 0,0", () => {
  assert.equal(parseGps({}), null);
  assert.equal(parseGps({ GPSLatitude: [43, 0, 0] }), null);
  assert.equal(parseGps({ GPSLatitude: [91, 0, 0], GPSLongitude: [10, 0, 0] }), null);
  assert.equal(parseGps({ GPSLatitude: [10, 0, 0], GPSLongitude: [181, 0, 0] }), null);
  assert.equal(parseGps({ GPSLatitude: [0, 0, 0], GPSLongitude: [0, 0, 0] }), null);
  assert.equal(parseGps({ GPSLatitude: "43", GPSLongitude: "11" }), null);
});

Deno.test("parseGps() falls back to exifr's signed latitude and longitude", () => {
  assert.deepEqual(parseGps({ latitude: -1.5, longitude: 2.5 }), { lat: -1.5, lon: 2.5 });
});

Deno.test("normalizeMetadata() maps exifr blocks to ImageMetadata", () => {
  const meta = normalizeMetadata({
    blocks: {
      ifd0: { Make: "NIKON\u0000", Model: "COOLPIX P6000 ", Orientation: 1 },
      exif: { DateTimeOriginal: "2008:10:22 16:38:20", OffsetTimeOriginal: "+02:00" },
      gps: {
        GPSLatitudeRef: "N",
        GPSLatitude: [43, 28, 1.49399999],
        GPSLongitudeRef: "E",
        GPSLongitude: [11, 53, 4.33799999],
      },
      ifd1: { ThumbnailOffset: 1, ThumbnailLength: 2 },
    },
    xmp: { xmlns: { dc: "http://purl.org/dc/elements/1.1/" }, exif: { DateTimeOriginal: "x" } },
  });
  assert.equal(meta.make, "NIKON");
  assert.equal(meta.model, "COOLPIX P6000");
  assert.equal(meta.takenAt, "2008-10-22T16:38:20+02:00");
  assert.equal(meta.orientation, 1);
  assert.ok(meta.gps && Math.abs(meta.gps.lat - 43.4670816666639) < 1e-6);
  assert.ok(Math.abs(meta.gps.lon - 11.8845383333306) < 1e-6);
  assert.equal(meta.partial, false);
  assert.deepEqual(Object.keys(meta.exif), ["ifd0", "exif", "gps", "xmp"]);
  assert.deepEqual(meta.exif.xmp, { exif: { DateTimeOriginal: "x" } });
});

Deno.test("normalizeMetadata() reads EXIF, never XMP, for takenAt", () => {
  const meta = normalizeMetadata({ xmp: { exif: { DateTimeOriginal: "2008-03-15T09:52:01" } } });
  assert.equal(meta.takenAt, null);
});

Deno.test("normalizeMetadata() flags partial and lists the issues under exif.errors", () => {
  const meta = normalizeMetadata({ issues: ["APP1 segment holds no EXIF block"] });
  assert.equal(meta.partial, true);
  assert.deepEqual(meta.exif, { errors: ["APP1 segment holds no EXIF block"] });
  assert.deepEqual(normalizeMetadata({}), {
    make: null,
    model: null,
    takenAt: null,
    orientation: null,
    gps: null,
    exif: {},
    partial: false,
  });
});

Deno.test("toJsonSafe() keeps small byte arrays readable and drops blobs", () => {
  assert.deepEqual(
    toJsonSafe({
      ExifVersion: ascii("0220"),
      ComponentsConfiguration: Uint8Array.from([1, 2, 3, 0]),
      Thumbnail: new Uint8Array(5000),
      BitsPerSample: Uint16Array.from([8, 8, 8]),
      Raw: new ArrayBuffer(4096),
      View: new DataView(new ArrayBuffer(4)),
    }),
    { ExifVersion: "0220", ComponentsConfiguration: [1, 2, 3, 0], BitsPerSample: [8, 8, 8] },
  );
});

Deno.test("toJsonSafe() strips NULs and lone surrogates and drops what JSON cannot hold", () => {
  const safe = toJsonSafe({
    a: "\u0000\u0001",
    b: "ok\u0000",
    c: "\ud800x",
    d: Number.NaN,
    e: Infinity,
    f: undefined,
    g: () => 1,
    h: new Date("2020-01-02T03:04:05Z"),
    i: 10n,
    j: -0,
    k: null,
    MakerNote: "secret",
  });
  assert.deepEqual(safe, {
    b: "ok",
    c: "\ufffdx",
    h: "2020-01-02T03:04:05.000Z",
    i: 10,
    j: 0,
    k: null,
  });
});

Deno.test("toJsonSafe() caps strings, arrays, keys, depth and total size", () => {
  assert.equal((toJsonSafe("x".repeat(5000)) as string).length, 501);
  assert.equal((toJsonSafe(Array.from({ length: 500 }, (_, i) => i)) as number[]).length, 64);
  const wide = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i]));
  assert.equal(Object.keys(toJsonSafe(wide) as object).length, 200);
  let deep: unknown = "bottom";
  for (let i = 0; i < 20; i++) deep = { d: deep };
  assert.deepEqual(toJsonSafe({ top: 1, deep }), { top: 1 });
  const big = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`k${i}`, "y".repeat(400)]));
  assert.ok(JSON.stringify(toJsonSafe(big, { maxTotal: 10_000 })).length < 11_000);
});

Deno.test("toJsonSafe() output round-trips through JSON for any input", () => {
  fc.assert(
    fc.property(
      fc.anything({
        withBigInt: true,
        withDate: true,
        withMap: true,
        withTypedArray: true,
        withNullPrototype: true,
        withSparseArray: true,
        withUnicodeString: true,
      }),
      (value) => {
        const safe = toJsonSafe(value);
        if (safe === undefined) return;
        const text = JSON.stringify(safe);
        assert.ok(!text.includes("\\u0000"));
        assert.ok(text.isWellFormed());
        assert.deepStrictEqual(JSON.parse(text), safe);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("cleanString() keeps tabs and newlines, removes other control characters", () => {
  assert.equal(cleanString(" a\tb\nc\u0007\u0000 "), "a\tb\nc");
});

Deno.test("buildExifJson() keeps errors first so a full budget never drops them", () => {
  const huge = Object.fromEntries(
    Array.from({ length: 300 }, (_, i) => [`k${i}`, "z".repeat(499)]),
  );
  const json = buildExifJson({ ifd0: huge, exif: huge }, { dc: huge }, ["broken"]);
  assert.deepEqual(json.errors, ["broken"]);
  assert.ok(JSON.stringify(json).length < 70_000);
});

Deno.test("app1Kind() tells EXIF, broken EXIF, XMP and other APP1 payloads apart", () => {
  assert.equal(app1Kind(concat(ascii("Exif\0\0"), TIFF)), "exif");
  assert.equal(app1Kind(concat(ascii("Exif\0\0"), ascii("garbage!garbage!"))), "exif-invalid");
  assert.equal(app1Kind(ascii("http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>")), "xmp");
  assert.equal(app1Kind(ascii("http://ns.adobe.com/xmp/extension/\0abc")), "xmp-extension");
  assert.equal(app1Kind(ascii("FLIR\0")), "other");
});

Deno.test("isTiffBlock() wants a TIFF header and an IFD0 inside the block", () => {
  assert.equal(isTiffBlock(TIFF), true);
  assert.equal(isTiffBlock(TIFF.subarray(0, 12)), false);
  assert.equal(isTiffBlock(Uint8Array.from([0x4d, 0x4d, 0, 0x2a, 0, 0, 0, 200])), false);
  assert.equal(isTiffBlock(new Uint8Array(3)), false);
});

Deno.test("jpegApp1Kinds() walks the segments up to the image data", () => {
  const segment = (marker: number, payload: Uint8Array) =>
    concat(
      Uint8Array.from([0xff, marker, (payload.length + 2) >> 8, (payload.length + 2) & 255]),
      payload,
    );
  const start = concat(
    Uint8Array.from([0xff, 0xd8]),
    segment(0xe0, ascii("JFIF\0\x01\x01\0\0\x01\0\x01\0\0")),
    segment(0xe1, ascii("http://ns.adobe.com/xap/1.0/\0<x/>")),
  );
  const jpeg = concat(
    start,
    segment(0xe1, concat(ascii("Exif\0\0"), TIFF)),
    segment(0xda, new Uint8Array(10)),
    segment(0xe1, ascii("FLIR\0")), // after SOS: image data, not a segment
  );
  assert.deepEqual(jpegApp1Kinds(jpeg), ["xmp", "exif"]);
  assert.deepEqual(jpegApp1Kinds(ascii("not a jpeg")), []);
  assert.deepEqual(jpegApp1Kinds(jpeg.subarray(0, start.length + 20)), ["xmp", "exif-invalid"]);
});

Deno.test("jpegExifIssues() flags APP1 without EXIF and broken EXIF, not plain EXIF", () => {
  assert.deepEqual(jpegExifIssues([]), []);
  assert.deepEqual(jpegExifIssues(["exif", "xmp"]), []);
  assert.deepEqual(jpegExifIssues(["xmp"]), ["APP1 segment holds no EXIF block"]);
  assert.equal(jpegExifIssues(["exif-invalid"]).length, 1);
  assert.equal(jpegExifIssues(["other"]).length, 2);
});

Deno.test("webpMetadataChunks() finds EXIF and XMP chunks past odd-sized chunks", () => {
  const chunk = (id: string, payload: Uint8Array) => {
    const head = concat(ascii(id), new Uint8Array(4));
    new DataView(head.buffer).setUint32(4, payload.length, true);
    return concat(head, payload, payload.length % 2 ? new Uint8Array(1) : new Uint8Array(0));
  };
  const body = concat(
    ascii("WEBP"),
    chunk("VP8X", new Uint8Array(10)),
    chunk("ICCP", new Uint8Array(3)),
    chunk("EXIF", concat(ascii("Exif\0\0"), TIFF)),
    chunk("XMP ", ascii("<x/>")),
  );
  const riff = concat(ascii("RIFF"), new Uint8Array(4), body);
  new DataView(riff.buffer).setUint32(4, body.length, true);
  const found = webpMetadataChunks(riff);
  assert.deepEqual(found.exif, TIFF);
  assert.deepEqual(found.xmp, ascii("<x/>"));
  assert.deepEqual(webpMetadataChunks(riff.subarray(0, 40)), {});
  assert.deepEqual(webpMetadataChunks(ascii("RIFF....AVI LIST")), {});
  assert.deepEqual(stripExifPrefix(TIFF), TIFF);
});

Deno.test("heifFormat() reads the brand: avif, heic, or heif", () => {
  const ftyp = (major: string, ...compatible: string[]) => {
    const box = concat(new Uint8Array(4), ascii("ftyp" + major + "\0\0\0\0" + compatible.join("")));
    new DataView(box.buffer).setUint32(0, box.length);
    return box;
  };
  assert.equal(heifFormat(ftyp("avif", "mif1")), "avif");
  assert.equal(heifFormat(ftyp("heic", "mif1")), "heic");
  assert.equal(heifFormat(ftyp("mif1", "mif1", "heic")), "heic");
  assert.equal(heifFormat(ftyp("mif1", "miaf", "avif")), "avif");
  assert.equal(heifFormat(ftyp("mif1", "miaf")), "heif");
  assert.equal(formatName("jpg", new Uint8Array()), "jpeg");
  assert.equal(formatName("png", new Uint8Array()), "png");
});
