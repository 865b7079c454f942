// extractThumbnail(): the camera's embedded preview of the fixture images, as it is.
import assert from "node:assert/strict";
import { imageSize } from "image-size";
import { extractImage } from "../../shared/metadata/extract.ts";
import { extractThumbnail } from "../../shared/metadata/thumbnail.ts";
import { fixtureBytes } from "../_helpers/fixtures.ts";

const EXPECTED: Record<string, [number, number] | null> = {
  "nikon_gps_1.jpg": [160, 120],
  "nikon_e950.jpg": [160, 120],
  "canon_powershot_s40.jpg": [160, 120],
  "nikon_d70.jpg": [66, 43],
  "konica_minolta_z3.jpg": [49, 70],
  // Its IFD1 points at the main image itself: not a preview.
  "sony_d700.jpg": null,
  "orientation_6.jpg": null,
  "plain.png": null,
  "sample.gif": null,
  "bush_dog.tif": null,
  "irvine.avif": null,
};

for (const [file, expected] of Object.entries(EXPECTED)) {
  Deno.test(`extractThumbnail() of ${file} is ${expected ? expected.join("x") : "none"}`, async () => {
    const bytes = await fixtureBytes(file);
    const image = await extractImage(bytes, { maxPixels: 100_000_000 });
    const thumb = await extractThumbnail(bytes, image);
    if (!expected) return assert.equal(thumb, null);
    assert.ok(thumb);
    assert.deepEqual([thumb.width, thumb.height], expected);
    assert.equal(thumb.contentType, "image/jpeg");
    const size = imageSize(thumb.bytes);
    assert.deepEqual([size.width, size.height], expected, "the bytes are that JPEG");
    assert.ok(thumb.bytes.byteLength < bytes.byteLength);
  });
}

Deno.test("extractThumbnail() never throws on a truncated file", async () => {
  const bytes = (await fixtureBytes("nikon_gps_1.jpg")).slice(0, 3000);
  assert.equal(await extractThumbnail(bytes, { format: "jpeg", width: 640, height: 480 }), null);
});
