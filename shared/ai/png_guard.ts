/**
 * @module ai/png_guard — a decompression-bomb check before fast-png inflates a PNG in one go:
 * streams the image data through the platform's DecompressionStream and stops as soon as it
 * yields more than the header's dimensions allow.
 */

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const MAX_CHUNKS = 100_000;

/** Bytes of filtered scanlines a PNG of this header inflates to, plus interlace slack. */
export function expectedPngBytes(
  width: number,
  height: number,
  bitDepth: number,
  colorType: number,
): number | null {
  const channels = CHANNELS[colorType];
  if (!channels || width <= 0 || height <= 0) return null;
  const rowBytes = Math.ceil((width * channels * bitDepth) / 8);
  const raw = height * (1 + rowBytes);
  return raw + Math.ceil(raw / 8) + 65536; // Adam7 adds filter bytes per pass
}

/** The concatenated IDAT payloads and the IHDR fields of a PNG; null when it is not one. */
export function pngImageData(
  bytes: Uint8Array,
):
  | { width: number; height: number; bitDepth: number; colorType: number; idat: Uint8Array[] }
  | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 33 || view.getUint32(0) !== 0x89504e47 || view.getUint32(12) !== 0x49484452) {
    return null;
  }
  const header = {
    width: view.getUint32(16),
    height: view.getUint32(20),
    bitDepth: bytes[24],
    colorType: bytes[25],
  };
  const idat: Uint8Array[] = [];
  let at = 8;
  for (let n = 0; n < MAX_CHUNKS && at + 12 <= bytes.length; n++) {
    const length = view.getUint32(at);
    const type = view.getUint32(at + 4);
    if (type === 0x49444154) {
      idat.push(bytes.subarray(at + 8, Math.min(bytes.length, at + 8 + length)));
    }
    if (type === 0x49454e44) break; // IEND
    at += 12 + length;
  }
  return { ...header, idat };
}

/** True when the PNG's image data inflates to no more than its header allows. */
export async function pngInflatesWithinHeader(bytes: Uint8Array): Promise<boolean> {
  const png = pngImageData(bytes);
  if (!png || png.idat.length === 0) return false;
  const limit = expectedPngBytes(png.width, png.height, png.bitDepth, png.colorType);
  if (limit === null) return false;
  const stream = new Blob(png.idat as Uint8Array<ArrayBuffer>[]).stream()
    .pipeThrough(new DecompressionStream("deflate"));
  const reader = stream.getReader();
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return true;
      total += value.length;
      if (total > limit) return false;
    }
  } catch {
    return false; // not a valid zlib stream: fast-png would fail too
  } finally {
    reader.cancel().catch(() => {});
  }
}
