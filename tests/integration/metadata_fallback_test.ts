// Metadata that survives a bad IFD: a real Sony DSC-HX5V file whose IFD0 exifr refuses (an entry
// of type 0) keeps its make, model, date, orientation and GPS through the fallback reader, marked
// partial; the values are exiftool's (tests/fixtures/PROVENANCE.md).
import assert from "node:assert/strict";
import exifr from "exifr";
import { extractImage } from "../../shared/metadata/extract.ts";
import { readRawMetadata } from "../../shared/metadata/exif_read.ts";
import { fixtureBytes } from "../_helpers/fixtures.ts";

const SONY = "sony_dsc_hx5v_2.jpg";
/** exiftool 12.57 -n on the file. */
const EXIFTOOL = {
  width: 730,
  height: 547,
  make: "SONY",
  model: "DSC-HX5V",
  takenAt: "2010-05-15T17:12:05",
  orientation: 1,
  gps: { lat: 51.778615, lon: 8.36563805555556 },
};

Deno.test("exifr alone refuses the Sony DSC-HX5V file's IFD0 (the fixture tests the fallback)", async () => {
  const bytes = await fixtureBytes(SONY);
  let ifd0: unknown;
  try {
    ifd0 = (await exifr.parse(bytes, { mergeOutput: false, translateValues: false }))?.ifd0;
  } catch (err) {
    assert.match(String(err), /Invalid TIFF value type/);
  }
  assert.equal(ifd0, undefined);
});

Deno.test("extractImage() keeps what exifr refused in a bad IFD0, marked partial", async () => {
  const image = await extractImage(await fixtureBytes(SONY), { maxPixels: 100_000_000 });
  const { metadata } = image;
  assert.equal(image.width, EXIFTOOL.width);
  assert.equal(image.height, EXIFTOOL.height);
  assert.equal(metadata.make, EXIFTOOL.make);
  assert.equal(metadata.model, EXIFTOOL.model);
  assert.equal(metadata.takenAt, EXIFTOOL.takenAt);
  assert.equal(metadata.orientation, EXIFTOOL.orientation);
  assert.ok(metadata.gps, "gps");
  assert.ok(Math.abs(metadata.gps.lat - EXIFTOOL.gps.lat) < 1e-6, String(metadata.gps.lat));
  assert.ok(Math.abs(metadata.gps.lon - EXIFTOOL.gps.lon) < 1e-6, String(metadata.gps.lon));
  assert.equal(metadata.partial, true);
  const errors = (metadata.exif as { errors: string[] }).errors;
  assert.ok(errors.some((e) => /Invalid TIFF value type/.test(e)), JSON.stringify(errors));
  assert.ok(errors.some((e) => /fallback reader/.test(e)), JSON.stringify(errors));
});

Deno.test("readRawMetadata() leaves a file exifr reads alone (no fallback, not partial)", async () => {
  const raw = await readRawMetadata(await fixtureBytes("nikon_gps_1.jpg"), "jpeg");
  assert.deepEqual(raw.issues, []);
  assert.ok((raw.blocks?.ifd0 as Record<string, unknown>).Make);
});
