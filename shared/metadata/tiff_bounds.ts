/**
 * @module metadata/tiff_bounds — the work exifr would do on a TIFF block (a TIFF file, or the
 * EXIF of a JPEG, PNG, WebP or HEIF), measured before it runs: entries per IFD and the bytes of
 * array and text values it copies element by element. Entries may all point at one large array,
 * so that work grows as entries x array size, far past the block's own size.
 */
import { MAX_IFD_ENTRIES, MAX_TIFF_IFDS, MAX_TIFF_VALUE_BYTES } from "../image_bounds.ts";

/** Bytes per value of each TIFF type (1-13); 0 for unknown types. */
const TYPE_SIZE = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4];
/** Types exifr hands back as a view of the block (BYTE, UNDEFINED): no per-element work. */
const VIEW_TYPES = new Set([1, 7]);
/** Tags pointing at the sub-IFDs exifr reads: EXIF, GPS, Interop. */
const SUB_IFD_TAGS = new Set([0x8769, 0x8825, 0xa005]);

/**
 * Why exifr must not be run on this TIFF block, or null when its IFDs are within bounds (or
 * it is no TIFF block: exifr rejects that cheaply itself).
 */
export function tiffProblem(block: Uint8Array): string | null {
  if (block.length < 8) return null;
  const little = block[0] === 0x49 && block[1] === 0x49;
  if (!little && !(block[0] === 0x4d && block[1] === 0x4d)) return null;
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const queue = [view.getUint32(4, little)];
  const seen = new Set<number>();
  let valueBytes = 0;
  for (let ifds = 0; queue.length > 0 && ifds < MAX_TIFF_IFDS; ifds++) {
    const at = queue.shift()!;
    if (seen.has(at) || at < 8 || at + 2 > block.length) continue;
    seen.add(at);
    const declared = view.getUint16(at, little);
    const entries = Math.min(declared, Math.floor((block.length - at - 2) / 12));
    if (entries > MAX_IFD_ENTRIES) {
      return `IFD with ${entries} entries, over ${MAX_IFD_ENTRIES}`;
    }
    for (let i = 0; i < entries; i++) {
      const entry = at + 2 + i * 12;
      const tag = view.getUint16(entry, little);
      const type = view.getUint16(entry + 2, little);
      const count = view.getUint32(entry + 4, little);
      const total = (TYPE_SIZE[type] ?? 0) * count;
      if (SUB_IFD_TAGS.has(tag)) queue.push(view.getUint32(entry + 8, little));
      if (total <= 4 || VIEW_TYPES.has(type)) continue;
      const offset = view.getUint32(entry + 8, little);
      if (offset > block.length) continue; // exifr throws on it at once
      // exifr reads until the block ends (and throws there): that is the work it does.
      valueBytes += Math.min(total, block.length - offset);
      if (valueBytes > MAX_TIFF_VALUE_BYTES) {
        return `IFD values of over ${MAX_TIFF_VALUE_BYTES} bytes`;
      }
    }
    const next = at + 2 + declared * 12;
    if (ifds === 0 && next + 4 <= block.length) queue.push(view.getUint32(next, little)); // IFD1
  }
  return null;
}
