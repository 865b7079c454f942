/**
 * @module tests/integration/decoder_property_test — fast-check throws crafted GIF, PNG, JPEG,
 * WebP, TIFF and HEIF/AVIF headers with extreme declared sizes and counts at every decoder entry
 * (sniff, header, bounds, metadata, thumbnail, colour decode, local provider). Property: the
 * stage-facing functions throw nothing but StageError, the others nothing at all; every call
 * stays under a time cap and grows the process's memory by less than a memory cap.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeForColors } from "../../shared/ai/decode.ts";
import { createLocalProvider } from "../../shared/ai/local.ts";
import { StageError } from "../../shared/errors.ts";
import { checkImageBounds } from "../../shared/metadata/bounds.ts";
import { readHeader } from "../../shared/metadata/dimensions.ts";
import { readRawMetadata } from "../../shared/metadata/exif_read.ts";
import { extractImage } from "../../shared/metadata/extract.ts";
import { extractThumbnail } from "../../shared/metadata/thumbnail.ts";
import { emptyMetadata } from "../../shared/metadata/types.ts";
import { sniffImageType } from "../../shared/net/sniff.ts";
import process from "node:process";
import { avifFtyp, box, concat, pngChunk, tinyPng, zlibZeros } from "../_helpers/hostile_images.ts";

/**
 * Most CPU time one call may take (an edge function has 2 s of CPU in all). Measured as the
 * process's CPU time around the call, not wall time, so that a busy machine cannot fail it.
 */
const TIME_CAP_MS = 1500;
/** Most the process's RSS may grow over one call (an edge function has 256 MB in all). */
const MEMORY_CAP_BYTES = 256 * 1024 * 1024;
/** Runs per format. */
const RUNS = 200;
const MAX_PIXELS = 100_000_000;

const provider = createLocalProvider();

/** Sizes and counts a hostile header likes: edges of each field width, and anything between. */
const u16 = fc.oneof(
  fc.constantFrom(0, 1, 2, 255, 0x7fff, 0xffff),
  fc.integer({ min: 0, max: 0xffff }),
);
const u24 = fc.oneof(
  fc.constantFrom(0, 1, 0xffff, 0xffffff),
  fc.integer({ min: 0, max: 0xffffff }),
);
const u32 = fc.oneof(
  fc.constantFrom(0, 1, 8, 0xffff, 0x7fffffff, 0xffffffff),
  fc.integer({ min: 0, max: 0xffffffff }),
);
/** A count: mostly small, at times `max` (past the bound it tests) or anything up to it. */
const count = (max: number) =>
  fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: 8 }), weight: 6 },
    { arbitrary: fc.constant(max), weight: 1 },
    { arbitrary: fc.integer({ min: 0, max }), weight: 1 },
  );

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const le16 = (n: number) => [n & 255, (n >> 8) & 255];
const le24 = (n: number) => [n & 255, (n >> 8) & 255, (n >> 16) & 255];
function be32(n: number): number[] {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}
function le32(n: number): number[] {
  return be32(n).reverse();
}

// ---- generators, one per format

const gif = fc.record({
  w: u16,
  h: u16,
  frames: fc.array(fc.tuple(u16, u16, u16, u16), { maxLength: 6 }),
  extra: count(12_000),
})
  .map(({ w, h, frames, extra }) => {
    const frame = (
      x: number,
      y: number,
      fw: number,
      fh: number,
    ) => [0x2c, ...le16(x), ...le16(y), ...le16(fw), ...le16(fh), 0, 2, 2, 0x4c, 0x01, 0];
    const parts = [
      ascii("GIF89a"),
      Uint8Array.from([...le16(w), ...le16(h), 0x80, 0, 0, 0, 0, 0, 255, 255, 255]),
    ];
    for (const f of frames) parts.push(Uint8Array.from(frame(...f)));
    const tiny = Uint8Array.from(frame(0, 0, 1, 1));
    for (let i = 0; i < extra; i++) parts.push(tiny); // many frames
    parts.push(Uint8Array.of(0x3b));
    return concat(parts);
  });

const png = fc.record({
  w: u32,
  h: u32,
  depth: fc.constantFrom(1, 2, 4, 8, 16, 0, 255),
  color: fc.constantFrom(0, 2, 3, 4, 6, 7),
  chunks: count(110_000),
  iccp: fc.constantFrom(0, 1000, 8 << 20, 64 << 20),
  frames: fc.array(fc.tuple(u32, u32, u32, u32), { maxLength: 4 }),
}).map(({ w, h, depth, color, chunks, iccp, frames }) => {
  const base = tinyPng([
    ...(iccp ? [pngChunk("iCCP", concat([ascii("p\0\0"), zlibZeros(iccp)]))] : []),
    pngChunk("acTL", Uint8Array.from([...be32(frames.length), 0, 0, 0, 0])),
    ...frames.map(([fw, fh, x, y], i) =>
      pngChunk(
        "fcTL",
        Uint8Array.from([
          ...be32(i),
          ...be32(fw),
          ...be32(fh),
          ...be32(x),
          ...be32(y),
          0,
          1,
          0,
          1,
          0,
          0,
        ]),
      )
    ),
  ]);
  const view = new DataView(base.buffer);
  view.setUint32(16, w);
  view.setUint32(20, h);
  base[24] = depth;
  base[25] = color;
  const empty = pngChunk("tEXt", new Uint8Array(0));
  const filler = new Uint8Array(chunks * empty.length);
  for (let i = 0; i < chunks; i++) filler.set(empty, i * empty.length);
  return concat([base.subarray(0, base.length - 12), filler, base.subarray(base.length - 12)]);
});

const jpeg = fc.record({
  w: u16,
  h: u16,
  progressive: fc.boolean(),
  components: fc.array(
    fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })),
    { minLength: 1, maxLength: 5 },
  ),
  scans: count(2_000),
  segments: count(5_000),
}).map(({ w, h, progressive, components, scans, segments }) => {
  const sof = [
    0xff,
    progressive ? 0xc2 : 0xc0,
    0,
    8 + 3 * components.length,
    8,
    h >> 8,
    h & 255,
    w >> 8,
    w & 255,
    components.length,
  ];
  components.forEach(([id, sampling]) => sof.push(id, sampling, 0));
  // deno-fmt-ignore
  const head = [
    0xff, 0xd8,
    0xff, 0xdb, 0, 67, 0, ...new Array(64).fill(1),
    ...sof,
    0xff, 0xc4, 0, 20, 0x10, 1, ...new Array(15).fill(0), 0xe0, // AC 0: EOBRUN 14 only
    0xff, 0xc4, 0, 20, 0x00, 1, ...new Array(15).fill(0), 0x00, // DC 0: 0 only
  ];
  const app = [0xff, 0xe2, 0, 4, 0, 0];
  const scan = [0xff, 0xda, 0, 8, 1, components[0][0], 0x00, 1, 63, 0, 0x7f, 0xfe];
  const out = new Uint8Array(head.length + segments * app.length + scans * scan.length + 2);
  out.set(head);
  let at = head.length;
  for (let i = 0; i < segments; i++, at += app.length) out.set(app, at);
  for (let i = 0; i < scans; i++, at += scan.length) out.set(scan, at);
  out.set([0xff, 0xd9], at);
  return out;
});

/** A TIFF block: IFD0 with width, height and `entries` array entries of `arrayCount` SHORTs. */
function tiffBlock(w: number, h: number, entries: number, declared: number, arrayCount: number) {
  const valuesAt = 8 + 2 + (entries + 2) * 12 + 4;
  const out = new Uint8Array(valuesAt + Math.min(arrayCount * 2, 1 << 20));
  const view = new DataView(out.buffer);
  out.set([0x49, 0x49, 0x2a, 0, 8, 0, 0, 0]);
  view.setUint16(8, declared, true);
  const put = (i: number, tag: number, type: number, n: number, value: number) => {
    const at = 10 + i * 12;
    view.setUint16(at, tag, true);
    view.setUint16(at + 2, type, true);
    view.setUint32(at + 4, n, true);
    view.setUint32(at + 8, value, true);
  };
  put(0, 256, 4, 1, w);
  put(1, 257, 4, 1, h);
  for (let i = 0; i < entries; i++) put(i + 2, 0x9000 + i, 3, arrayCount, valuesAt);
  return out;
}

const tiffArgs = fc.record({
  w: u32,
  h: u32,
  entries: count(5_000),
  declared: u16,
  arrayCount: u32,
});
const tiff = tiffArgs.map(({ w, h, entries, declared, arrayCount }) =>
  tiffBlock(w, h, entries, declared, arrayCount)
);

const webp = fc.record({
  w: u24,
  h: u24,
  frames: fc.array(fc.tuple(u24, u24, u24, u24), { maxLength: 4 }),
  chunks: count(110_000),
  exif: fc.option(tiffArgs, { nil: undefined }),
}).map(({ w, h, frames, chunks, exif }) => {
  const parts: Uint8Array[] = [];
  const chunk = (id: string, body: Uint8Array) => {
    parts.push(ascii(id), Uint8Array.from(le32(body.length)), body);
    if (body.length & 1) parts.push(Uint8Array.of(0));
  };
  chunk("VP8X", Uint8Array.from([0x0a, 0, 0, 0, ...le24(w), ...le24(h)]));
  for (const [x, y, fw, fh] of frames) {
    chunk("ANMF", Uint8Array.from([...le24(x), ...le24(y), ...le24(fw), ...le24(fh), 0, 0, 0, 0]));
  }
  const filler = new Uint8Array(chunks * 8);
  for (let i = 0; i < chunks; i++) filler.set(ascii("JUNK"), i * 8);
  parts.push(filler);
  if (exif) chunk("EXIF", tiffBlock(exif.w, exif.h, exif.entries, exif.declared, exif.arrayCount));
  const body = concat(parts);
  return concat([ascii("RIFF"), Uint8Array.from(le32(body.length + 4)), ascii("WEBP"), body]);
});

const heif = fc.record({
  w: u32,
  h: u32,
  properties: count(50_000),
  zeroBox: fc.boolean(),
  metaSize: fc.option(u32, { nil: undefined }),
  exif: fc.option(tiffArgs, { nil: undefined }),
}).map(({ w, h, properties, zeroBox, metaSize, exif }) => {
  const ispe = box("ispe", Uint8Array.from([0, 0, 0, 0, ...be32(w), ...be32(h)]));
  const props = new Uint8Array(properties * ispe.length);
  for (let i = 0; i < properties; i++) props.set(ispe, i * ispe.length);
  const iprp = box("iprp", box("ipco", concat([ispe, props])));
  const metaParts = [new Uint8Array(4), iprp];
  let tail: Uint8Array = new Uint8Array(0);
  if (exif) {
    // iinf with one Exif item (infe v2, id 1) and iloc (v0, 4-byte offset and length)
    const infe = box("infe", Uint8Array.from([2, 0, 0, 0, 0, 1, 0, 0, ...ascii("Exif"), 0]));
    const block = concat([
      new Uint8Array(4),
      tiffBlock(exif.w, exif.h, exif.entries, exif.declared, exif.arrayCount),
    ]);
    metaParts.push(box("iinf", concat([new Uint8Array(4), Uint8Array.of(0, 1), infe])));
    metaParts.push(
      box(
        "iloc",
        Uint8Array.from([
          0,
          0,
          0,
          0,
          0x44,
          0x00,
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
          0,
          ...be32(block.length),
        ]),
      ),
    );
    tail = block;
  }
  const meta = box("meta", concat(metaParts), metaSize);
  const ftyp = avifFtyp();
  const zero = zeroBox ? box("free", new Uint8Array(8), 0) : new Uint8Array(0);
  const out = concat([ftyp, zero, meta, box("mdat", tail)]);
  if (exif) {
    // point the iloc extent at the mdat body
    const at = out.length - tail.length;
    const ilocExtent = findAscii(out, "iloc") + 4 + 4 + 2 + 2 + 2 + 2 + 2;
    new DataView(out.buffer).setUint32(ilocExtent, at);
  }
  return out;
});

function findAscii(bytes: Uint8Array, s: string): number {
  outer: for (let i = 0; i + s.length <= bytes.length; i++) {
    for (let j = 0; j < s.length; j++) if (bytes[i + j] !== s.charCodeAt(j)) continue outer;
    return i;
  }
  return -1;
}

// ---- the property

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
    assert.ok(["corrupt_image", "too_large"].includes(error.code), `${what}: ${error.code}`);
  }
  const cpu = process.cpuUsage(start);
  const ms = (cpu.user + cpu.system) / 1000;
  const grown = Deno.memoryUsage().rss - rss;
  assert.ok(ms < TIME_CAP_MS, `${what} took ${ms.toFixed(0)} ms of CPU`);
  assert.ok(grown < MEMORY_CAP_BYTES, `${what} grew RSS by ${(grown / 1e6).toFixed(0)} MB`);
  return result;
}

async function everyEntry(bytes: Uint8Array, format: string): Promise<void> {
  await bounded("sniffImageType()", false, () => sniffImageType(bytes));
  const header = await bounded("readHeader()", true, () => readHeader(bytes, MAX_PIXELS));
  const { width, height } = header ?? { width: 4000, height: 4000 };
  const fmt = header?.format ?? format;
  await bounded("checkImageBounds()", true, () => checkImageBounds(bytes, fmt, width, height));
  await bounded("extractImage()", true, () => extractImage(bytes, { maxPixels: MAX_PIXELS }));
  await bounded("readRawMetadata()", false, () => readRawMetadata(bytes, fmt));
  await bounded(
    "extractThumbnail()",
    false,
    () => extractThumbnail(bytes, { format: fmt, width, height }),
  );
  await bounded("decodeForColors()", false, () => decodeForColors(bytes, fmt, width, height));
  await bounded("LocalProvider.analyze()", false, () =>
    provider.analyze({
      bytes,
      contentType: `image/${format}`,
      width: null,
      height: null,
      format: null,
      metadata: emptyMetadata(),
    }));
}

const FORMATS: [string, fc.Arbitrary<Uint8Array>][] = [
  ["gif", gif],
  ["png", png],
  ["jpeg", jpeg],
  ["webp", webp],
  ["tiff", tiff],
  ["avif", heif],
];

for (const [format, arbitrary] of FORMATS) {
  Deno.test(`every decoder entry stays within ${TIME_CAP_MS} ms and ${MEMORY_CAP_BYTES >> 20} MB on crafted ${format} headers`, async () => {
    await fc.assert(fc.asyncProperty(arbitrary, (bytes) => everyEntry(bytes, format)), {
      numRuns: RUNS,
    });
  });
}
