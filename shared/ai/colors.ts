/**
 * @module ai/colors — dominant colours of RGBA pixels, quantised to a small named palette by
 * hue, saturation and value. Pure and deterministic.
 */

/** The palette, in the order ties are broken. */
export const COLOR_NAMES = [
  "red",
  "orange",
  "yellow",
  "green",
  "blue",
  "purple",
  "pink",
  "brown",
  "black",
  "white",
  "gray",
] as const;

/** One of {@linkcode COLOR_NAMES}. */
export type ColorName = typeof COLOR_NAMES[number];

/** Options of {@linkcode dominantColors}; every field is optional. */
export interface DominantColorOptions {
  /** Most pixels looked at, evenly spread (default 4096). */
  maxSamples?: number;
  /** Smallest share of the sampled pixels a colour other than the top one needs (default 0.15). */
  minShare?: number;
  /** Most colours returned (default 3). */
  max?: number;
}

/** The palette name of one sRGB colour (0-255 channels). */
export function colorName(r: number, g: number, b: number): ColorName {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const v = max / 255;
  const s = max === 0 ? 0 : (max - min) / max;
  if (v < 0.2) return "black";
  if (s < 0.18 || max - min < 24) {
    if (v > 0.85) return "white";
    return v < 0.3 ? "black" : "gray";
  }
  const h = hue(r, g, b, max, min);
  if (h < 15 || h >= 345) return s < 0.45 && v > 0.75 ? "pink" : v < 0.45 ? "brown" : "red";
  if (h < 45) return v < 0.6 || s < 0.4 ? "brown" : "orange";
  // Dull yellows read as khaki (brown) or olive (green), not yellow.
  if (h < 70) return v >= 0.6 && s >= 0.45 ? "yellow" : h < 55 ? "brown" : "green";
  if (h < 170) return "green";
  if (h < 260) return "blue";
  if (h < 290) return "purple";
  return v > 0.6 ? "pink" : "purple";
}

/**
 * The dominant palette colours of RGBA pixels (4 bytes each), most frequent first: the top one,
 * then others with at least `minShare`. Pixels more than half transparent are skipped; empty
 * when nothing was sampled.
 *
 * @example
 * dominantColors(new Uint8Array([0, 0, 255, 255])); // ["blue"]
 */
export function dominantColors(
  rgba: ArrayLike<number>,
  options: DominantColorOptions = {},
): ColorName[] {
  const { maxSamples = 4096, minShare = 0.15, max = 3 } = options;
  const pixels = Math.floor(rgba.length / 4);
  if (pixels === 0) return [];
  const step = Math.max(1, Math.floor(pixels / maxSamples));
  const counts = new Map<ColorName, number>();
  let sampled = 0;
  for (let p = 0; p < pixels; p += step) {
    const i = p * 4;
    if (rgba[i + 3] < 128) continue;
    const name = colorName(rgba[i], rgba[i + 1], rgba[i + 2]);
    counts.set(name, (counts.get(name) ?? 0) + 1);
    sampled++;
  }
  if (sampled === 0) return [];
  const ranked = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || COLOR_NAMES.indexOf(a[0]) - COLOR_NAMES.indexOf(b[0]));
  // The most frequent colour always counts; the others need `minShare`.
  return ranked
    .filter(([, n], i) => i === 0 || n / sampled >= minShare)
    .slice(0, max)
    .map(([name]) => name);
}

function hue(r: number, g: number, b: number, max: number, min: number): number {
  const d = max - min;
  let h: number;
  if (max === r) h = ((g - b) / d) % 6;
  else if (max === g) h = (b - r) / d + 2;
  else h = (r - g) / d + 4;
  h *= 60;
  return h < 0 ? h + 360 : h;
}
