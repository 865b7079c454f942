/**
 * @module tests/_helpers/hostile_images — small crafted files that make naive decoders do huge
 * work: a GIF frame far larger than its canvas, PNG ancillary chunks that inflate to gigabytes, a
 * progressive JPEG with a hundred thousand scans, and a few container-structure bombs. Each is
 * built in milliseconds with little memory (compression bombs repeat one deflate piece).
 */
import { constants, deflateRawSync } from "node:zlib";
import jpeg from "jpeg-js";

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** The parts joined into one array. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
}

// ---- GIF

/**
 * The 35-byte GIF: a 1x1 canvas (so every pixel check passes) whose one frame declares
 * 65535x65535; a decoder that trusts the frame allocates 4.3 GB and loops 4.3 billion times.
 */
export function gifFrameBomb(): Uint8Array {
  // deno-fmt-ignore
  return Uint8Array.from([
    ...ascii("GIF89a"),
    1, 0, 1, 0, 0x80, 0, 0, // 1x1 canvas, global colour table of 2 entries
    0, 0, 0, 255, 255, 255,
    0x2c, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, // frame at 0,0 of 65535x65535
    2, 2, 0x4c, 0x01, 0, // LZW: min code size 2, one sub-block, end
    0x3b,
  ]);
}

// ---- PNG

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 of the PNG spec (over chunk type and data). */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One PNG chunk with its length and a correct CRC. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(ascii(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** A valid 1x1 RGB PNG with `extra` chunks placed after IHDR. */
export function tinyPng(extra: Uint8Array[] = []): Uint8Array {
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, 1);
  new DataView(ihdr.buffer).setUint32(4, 1);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const idat = new Uint8Array([0x78, 0x9c, ...deflateRawSync(new Uint8Array([0, 200, 40, 40]))]);
  const tail = new Uint8Array(4);
  new DataView(tail.buffer).setUint32(0, adler32Of([0, 200, 40, 40]));
  return concat([
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    ...extra,
    pngChunk("IDAT", concat([idat, tail])),
    pngChunk("IEND", new Uint8Array(0)),
  ]);
}

function adler32Of(bytes: ArrayLike<number>): number {
  let a = 1, b = 0;
  for (let i = 0; i < bytes.length; i++) (a = (a + bytes[i]) % 65521, b = (b + a) % 65521);
  return ((b << 16) | a) >>> 0;
}

const PIECE = 1 << 20;
let zeroPiece: Uint8Array | undefined;

/**
 * A zlib stream that inflates to `inflated` zero bytes, about 1/1000 of that in size: one
 * deflate piece of 1 MiB of zeros (sync-flushed, so it ends byte-aligned and refers only to
 * itself) repeated, a remainder piece, an empty final block and the Adler-32.
 */
export function zlibZeros(inflated: number): Uint8Array {
  zeroPiece ??= deflateRawSync(new Uint8Array(PIECE), { finishFlush: constants.Z_SYNC_FLUSH });
  const whole = Math.floor(inflated / PIECE);
  const rest = inflated % PIECE;
  const parts: Uint8Array[] = [Uint8Array.from([0x78, 0x9c])];
  for (let i = 0; i < whole; i++) parts.push(zeroPiece);
  if (rest > 0) {
    parts.push(deflateRawSync(new Uint8Array(rest), { finishFlush: constants.Z_SYNC_FLUSH }));
  }
  parts.push(Uint8Array.from([0x03, 0x00])); // final fixed-Huffman block holding only end-of-block
  const adler = new Uint8Array(4);
  new DataView(adler.buffer).setUint32(0, (((inflated % 65521) << 16) | 1) >>> 0);
  parts.push(adler);
  return concat(parts);
}

/** Default inflated size of the PNG bombs: 2 GiB. */
export const PNG_BOMB_BYTES = 2 * 1024 ** 3;

/**
 * A valid 1x1 PNG plus an iCCP chunk whose zlib data inflates to `inflatedBytes` (2 GiB by
 * default, in a ~2 MB file).
 */
export function pngIccpBomb(inflatedBytes: number = PNG_BOMB_BYTES): Uint8Array {
  const iccp = concat([ascii("icc\0"), Uint8Array.of(0), zlibZeros(inflatedBytes)]);
  return tinyPng([pngChunk("iCCP", iccp)]);
}

/**
 * A valid 1x1 PNG plus a compressed text chunk (zTXt, or a compressed iTXt XMP packet) whose
 * text inflates to `inflatedBytes` (2 GiB by default).
 */
export function pngTextBomb(
  kind: "zTXt" | "iTXt" = "zTXt",
  inflatedBytes: number = PNG_BOMB_BYTES,
): Uint8Array {
  const body = kind === "zTXt"
    ? concat([ascii("Comment\0"), Uint8Array.of(0), zlibZeros(inflatedBytes)])
    : concat([ascii("XML:com.adobe.xmp\0"), Uint8Array.of(1, 0, 0, 0), zlibZeros(inflatedBytes)]);
  return tinyPng([pngChunk(kind, body)]);
}

// ---- JPEG

/**
 * A progressive JPEG header of `side` x `side` (one component) followed by `scans` 12-byte AC
 * scans, each one end-of-band run covering the whole image: cheap bytes, but a decoder visits
 * every block once per scan (100k scans x 31k blocks at the defaults).
 */
export function jpegScanBomb(scans = 100_000, side = 1408): Uint8Array {
  // deno-fmt-ignore
  const head = [
    0xff, 0xd8,
    0xff, 0xdb, 0, 67, 0, ...new Array(64).fill(1), // DQT: table 0, all ones
    0xff, 0xc2, 0, 11, 8, side >> 8, side & 255, side >> 8, side & 255, 1, 1, 0x11, 0, // SOF2
    0xff, 0xc4, 0, 20, 0x10, 1, ...new Array(15).fill(0), 0xe0, // DHT AC 0: one code, EOBRUN 14
  ];
  // SOS (1 component, AC table 0, bands 1-63) then the code "0" and 14 one-bits: a run of 32766.
  const scan = [0xff, 0xda, 0, 8, 1, 1, 0x00, 1, 63, 0, 0x7f, 0xfe];
  const out = new Uint8Array(head.length + scans * scan.length + 2);
  out.set(head);
  for (let i = 0, at = head.length; i < scans; i++, at += scan.length) out.set(scan, at);
  out.set([0xff, 0xd9], out.length - 2);
  return out;
}

// ---- HEIF / TIFF

/** An ISO-BMFF box of `type` around `body`. */
export function box(type: string, body: Uint8Array, size = 8 + body.length): Uint8Array {
  const out = new Uint8Array(8 + body.length);
  new DataView(out.buffer).setUint32(0, size);
  out.set(ascii(type), 4);
  out.set(body, 8);
  return out;
}

/** An AVIF ftyp box ("avif" major brand, "mif1" and "avif" compatible). */
export function avifFtyp(): Uint8Array {
  return box("ftyp", concat([ascii("avif"), new Uint8Array(4), ascii("mif1avif")]));
}

/**
 * An AVIF whose meta box holds an ipco with `properties` ispe boxes of `width` x `height`: a
 * header reader that looks for a clap box after each ispe walks the rest of the file each time.
 */
export function heifPropertyFlood(properties = 200_000, width = 1, height = 1): Uint8Array {
  const ispe = new Uint8Array(20);
  const view = new DataView(ispe.buffer);
  view.setUint32(0, 20);
  ispe.set(ascii("ispe"), 4);
  view.setUint32(12, width);
  view.setUint32(16, height);
  const ipco = new Uint8Array(8 + properties * 20);
  new DataView(ipco.buffer).setUint32(0, ipco.length);
  ipco.set(ascii("ipco"), 4);
  for (let i = 0; i < properties; i++) ipco.set(ispe, 8 + i * 20);
  const meta = box("meta", concat([new Uint8Array(4), box("iprp", ipco)]));
  return concat([avifFtyp(), meta]);
}

/**
 * A valid-looking AVIF header (ftyp, meta with one ispe) preceded by a zero-sized box: a
 * reader that steps from box to box by their sizes never moves on.
 */
export function heifZeroSizeBox(): Uint8Array {
  const flood = heifPropertyFlood(1, 64, 64);
  const ftyp = avifFtyp();
  return concat([ftyp, box("free", new Uint8Array(8), 0), flood.subarray(ftyp.length)]);
}

/**
 * A little-endian TIFF of `width` x `height` whose IFD0 has `entries` entries, each a SHORT
 * array pointing at the same `valueBytes` of data: an EXIF reader that copies every array does
 * entries x valueBytes / 2 reads.
 */
export function tiffValueBomb(entries = 4000, valueBytes = 4 << 20, width = 16, height = 16) {
  const ifdAt = 8;
  const valuesAt = ifdAt + 2 + entries * 12 + 4;
  const out = new Uint8Array(valuesAt + valueBytes);
  const view = new DataView(out.buffer);
  out.set([0x49, 0x49, 0x2a, 0]);
  view.setUint32(4, ifdAt, true);
  view.setUint16(ifdAt, entries, true);
  for (let i = 0; i < entries; i++) {
    const at = ifdAt + 2 + i * 12;
    const tag = i === 0 ? 256 : i === 1 ? 257 : 0x8000 + i;
    view.setUint16(at, tag, true);
    view.setUint16(at + 2, 3, true); // SHORT
    if (i < 2) {
      view.setUint32(at + 4, 1, true);
      view.setUint16(at + 8, i === 0 ? width : height, true);
    } else {
      view.setUint32(at + 4, valueBytes / 2, true);
      view.setUint32(at + 8, valuesAt, true);
    }
  }
  return out;
}

/**
 * A valid JPEG of noise, `side` x `side`: no EXIF preview and under the local provider's
 * 2-megapixel cap, so it is decoded in full (hundreds of ms of jpeg-js). No bomb, just slow
 * work: a real input that outlasts a short deadline.
 */
export function noisyJpeg(side: number, quality = 50): Uint8Array {
  const data = new Uint8Array(side * side * 4);
  let x = 12345;
  for (let i = 0; i < data.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return new Uint8Array(jpeg.encode({ width: side, height: side, data }, quality).data);
}
