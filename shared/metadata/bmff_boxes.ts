/**
 * @module metadata/bmff_boxes — the box structure of a HEIF/AVIF (ISO-BMFF) file, walked once
 * with capped counts before image-size or exifr see it. exifr steps from top-level box to box by
 * their sizes until it meets "meta", so a zero-sized box before it never lets it move on;
 * image-size looks for a "clap" box after every "ispe", walking the rest of the input each time,
 * so the boxes after the first ispe must be few. The EXIF item is found as exifr finds it
 * (iinf, then iloc), so its TIFF block can be checked too.
 */
import { MAX_HEIF_BOXES, MAX_HEIF_META_BYTES } from "../image_bounds.ts";

/** What the walk found, or the problem that stopped it. */
export type HeifWalk =
  | { problem: { code: "corrupt_image" | "too_large"; message: string } }
  | {
    problem: null;
    /** Offset just past the meta box (image-size needs no byte beyond); null without one. */
    metaEnd: number | null;
    /** The EXIF item's TIFF block, as exifr would locate it. */
    exif: Uint8Array | null;
  };

interface Box {
  type: string;
  offset: number;
  /** Offset of the body (after size, type and a 64-bit size if any). */
  start: number;
  end: number;
}

/** True when `bytes` look like ISO-BMFF ("ftyp" at offset 4). */
export function isBmff(bytes: Uint8Array): boolean {
  return bytes.length >= 12 && fourcc(bytes, 4) === "ftyp";
}

/** Walks the top-level boxes and the meta box; see the module comment for what is checked. */
export function walkHeif(bytes: Uint8Array): HeifWalk {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let meta: Box | null = null;
  let count = 0;
  for (let at = 0; at + 8 <= bytes.length && !meta;) {
    if (++count > MAX_HEIF_BOXES) return tooLarge(`over ${MAX_HEIF_BOXES} boxes`);
    let size = view.getUint32(at);
    let header = 8;
    if (size === 1 && at + 16 <= bytes.length) {
      size = Number(view.getBigUint64(at + 8));
      header = 16;
    }
    if (size === 0 || size < header) {
      return corrupt(
        `box "${printable(fourcc(bytes, at + 4))}" of size ${size} before the meta box`,
      );
    }
    const type = fourcc(bytes, at + 4);
    if (type === "meta") {
      if (size > MAX_HEIF_META_BYTES) {
        return tooLarge(`meta box of over ${MAX_HEIF_META_BYTES} bytes`);
      }
      meta = { type, offset: at, start: at + header, end: Math.min(bytes.length, at + size) };
    }
    at += size;
  }
  if (!meta) return { problem: null, metaEnd: null, exif: null };
  // image-size's walk after an ispe: the rest of ipco, then iprp and meta, box by box, stepping
  // 8 bytes over a size under 8. Count those steps from the start of the meta box's children.
  const children = boxes(view, meta.start + 4, meta.end);
  if (children === null) return tooLarge(`over ${MAX_HEIF_BOXES} boxes in the meta box`);
  const iprp = children.find((b) => b.type === "iprp");
  if (iprp) {
    const props = boxes(view, iprp.start, meta.end);
    const ipco = props?.find((b) => b.type === "ipco");
    if (!props || (ipco && boxes(view, ipco.start, meta.end) === null)) {
      return tooLarge(`over ${MAX_HEIF_BOXES} boxes in the meta box`);
    }
  }
  // exifr finds iinf/iloc more leniently than the meta box's size says (a 64-bit size, boxes
  // after meta): look for them in every box from meta's children to the end of the file too, so
  // the block checked here is never smaller than the one exifr will read.
  const exif = exifItem(bytes, view, children) ??
    exifItem(bytes, view, boxes(view, meta.start + 4, bytes.length) ?? []) ??
    exifItem(bytes, view, boxes(view, meta.offset + 12, bytes.length) ?? []);
  return { problem: null, metaEnd: meta.end, exif };
}

/** Boxes from `at` to `end` as image-size steps over them; null past MAX_HEIF_BOXES. */
function boxes(view: DataView, at: number, end: number): Box[] | null {
  const found: Box[] = [];
  while (at + 8 <= end) {
    if (found.length >= MAX_HEIF_BOXES) return null;
    const size = view.getUint32(at);
    const type = String.fromCharCode(
      view.getUint8(at + 4),
      view.getUint8(at + 5),
      view.getUint8(at + 6),
      view.getUint8(at + 7),
    );
    const step = size < 8 ? 8 : size;
    found.push({ type, offset: at, start: at + 8, end: Math.min(end, at + step) });
    at += step;
  }
  return found;
}

/** The EXIF item's TIFF block: exifr's iinf/iloc lookup, with every read inside the file. */
function exifItem(bytes: Uint8Array, view: DataView, meta: Box[]): Uint8Array | null {
  const iinf = meta.find((b) => b.type === "iinf");
  const iloc = meta.find((b) => b.type === "iloc");
  if (!iinf || !iloc) return null;
  try {
    let id: number | null = null;
    let at = iinf.start + 4;
    let count = view.getUint16(at);
    at += 2;
    while (count-- > 0 && id === null) {
      const size = view.getUint32(at);
      const version = view.getUint8(at + 8);
      if (version >= 2) {
        const idSize = version === 3 ? 4 : 2;
        if (fourcc(bytes, at + 12 + idSize + 2) === "Exif") id = uint(view, at + 12, idSize);
      }
      if (size === 0) break;
      at += size;
    }
    if (id === null) return null;
    const version = view.getUint8(iloc.start);
    at = iloc.start + 4;
    const offsetSize = view.getUint8(at) >> 4, lengthSize = view.getUint8(at) & 15;
    const baseSize = view.getUint8(at + 1) >> 4, indexSize = view.getUint8(at + 1) & 15;
    at += 2;
    const idSize = version === 2 ? 4 : 2;
    let items = uint(view, at, version === 2 ? 4 : 2);
    at += version === 2 ? 4 : 2;
    while (items-- > 0 && at < bytes.length) {
      const item = uint(view, at, idSize);
      at += idSize + (version === 1 || version === 2 ? 2 : 0) + 2 + baseSize;
      const extents = view.getUint16(at);
      at += 2;
      if (item === id) {
        const offset = uint(view, at + indexSize, offsetSize);
        const length = uint(view, at + indexSize + offsetSize, lengthSize);
        const skip = 4 + view.getUint32(offset);
        return bytes.subarray(offset + skip, Math.min(bytes.length, offset + length));
      }
      at += extents * (indexSize + offsetSize + lengthSize);
    }
  } catch {
    // a read past the end: exifr throws there too, after no more work than this
  }
  return null;
}

function uint(view: DataView, at: number, size: number): number {
  switch (size) {
    case 0:
      return 0;
    case 1:
      return view.getUint8(at);
    case 2:
      return view.getUint16(at);
    case 4:
      return view.getUint32(at);
    default:
      return Number(view.getBigUint64(at));
  }
}

function fourcc(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(...bytes.subarray(at, at + 4));
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, "?");
}

function corrupt(message: string): HeifWalk {
  return { problem: { code: "corrupt_image", message: `HEIF ${message}` } };
}

function tooLarge(message: string): HeifWalk {
  return { problem: { code: "too_large", message: `HEIF ${message}` } };
}
