/**
 * @module tests/_helpers/hostile_files — more crafted files for the hostile-input catalogue: EXIF
 * blocks whose offsets point outside the file or back into themselves, a PNG declaring ten
 * billion pixels, a GIF of a million frames, a tiny BMP, and a raw TCP server for answers
 * Deno.serve will not send (a lying Content-Length).
 */
import { concat, crc32, tinyPng } from "./hostile_images.ts";

const le16 = (n: number) => new Uint8Array([n & 0xff, (n >> 8) & 0xff]);
const le32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};
const be16 = (n: number) => new Uint8Array([(n >> 8) & 0xff, n & 0xff]);

/** One little-endian IFD entry: tag, type, count, value or offset. */
function ifdEntry(tag: number, type: number, count: number, value: number): Uint8Array {
  return concat([le16(tag), le16(type), le32(count), le32(value)]);
}

/** `jpeg` (a real JPEG) with an APP1 Exif segment holding `tiff` put right after its SOI. */
export function jpegWithExif(jpeg: Uint8Array, tiff: Uint8Array): Uint8Array {
  const payload = concat([new TextEncoder().encode("Exif\0\0"), tiff]);
  return concat([
    jpeg.subarray(0, 2),
    new Uint8Array([0xff, 0xe1]),
    be16(payload.length + 2),
    payload,
    jpeg.subarray(2),
  ]);
}

/** A TIFF header whose IFD0 offset lies far beyond the end of the block. */
export function tiffIfdOutside(): Uint8Array {
  return concat([new TextEncoder().encode("II"), le16(42), le32(0xffffff00)]);
}

/**
 * A TIFF whose IFD0 is readable but whose Make string, ExifIFD pointer and GPS pointer point
 * 2 GB beyond the block.
 */
export function tiffEntriesOutside(): Uint8Array {
  return concat([
    new TextEncoder().encode("II"),
    le16(42),
    le32(8),
    le16(3),
    ifdEntry(0x010f, 2, 100, 0x7ffffff0), // Make: ASCII x100, far away
    ifdEntry(0x8769, 4, 1, 0x7ffffff0), // ExifIFD pointer
    ifdEntry(0x8825, 4, 1, 0x7ffffff0), // GPS IFD pointer
    le32(0),
  ]);
}

/** A TIFF whose IFD0 names itself as its Exif IFD, its GPS IFD and its next IFD: a loop. */
export function tiffSelfReferencing(): Uint8Array {
  return concat([
    new TextEncoder().encode("II"),
    le16(42),
    le32(8),
    le16(3),
    ifdEntry(0x0112, 3, 1, 1), // Orientation = 1
    ifdEntry(0x8769, 4, 1, 8), // ExifIFD -> IFD0
    ifdEntry(0x8825, 4, 1, 8), // GPS IFD -> IFD0
    le32(8), // next IFD -> IFD0
  ]);
}

/** A valid 1x1 PNG whose IHDR (CRC fixed up) declares `width` x `height`. */
export function pngDeclaring(width: number, height: number): Uint8Array {
  const png = tinyPng().slice();
  const view = new DataView(png.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  view.setUint32(29, crc32(png.subarray(12, 29)));
  return png;
}

/** A valid GIF of `frames` 1x1 frames (15 bytes each): a million frames is 15 MB. */
export function gifOfFrames(frames = 1_000_000): Uint8Array {
  const head = new Uint8Array([
    ...new TextEncoder().encode("GIF89a"),
    1,
    0,
    1,
    0,
    0x80, // global colour table of 2 entries
    0,
    0,
    0,
    0,
    0,
    255,
    255,
    255,
  ]);
  // Image descriptor 1x1 at 0,0; LZW minimum code size 2; one pixel: clear, 0, end.
  const frame = new Uint8Array([0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0]);
  const out = new Uint8Array(head.length + frames * frame.length + 1);
  out.set(head);
  for (let i = 0; i < frames; i++) out.set(frame, head.length + i * frame.length);
  out[out.length - 1] = 0x3b;
  return out;
}

/** A valid 2x2 24-bit BMP. */
export function tinyBmp(): Uint8Array {
  const rows = new Uint8Array(16).fill(0x80);
  const info = concat([
    le32(40),
    le32(2),
    le32(2),
    le16(1),
    le16(24),
    le32(0),
    le32(rows.length),
    le32(2835),
    le32(2835),
    le32(0),
    le32(0),
  ]);
  const size = 14 + info.length + rows.length;
  return concat([
    new TextEncoder().encode("BM"),
    le32(size),
    le32(0),
    le32(14 + info.length),
    info,
    rows,
  ]);
}

/**
 * A raw TCP server on loopback that answers every connection with `head` then `body` (bytes,
 * or an async generator of chunks), then closes: for answers a well-behaved server will not
 * send.
 */
export function rawHttpServer(
  answer: () => { head: string; body: Uint8Array | AsyncIterable<Uint8Array> },
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        try {
          // Read the request head (enough to let the client finish sending it).
          await conn.read(new Uint8Array(8192));
          const { head, body } = answer();
          await conn.write(new TextEncoder().encode(head));
          if (body instanceof Uint8Array) await conn.write(body);
          else for await (const chunk of body) await conn.write(chunk);
        } catch { /* the client went away */ }
        try {
          conn.close();
        } catch { /* closed */ }
        conns.delete(conn);
      })();
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}
