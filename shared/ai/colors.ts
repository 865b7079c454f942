/**
 * @module ai/colors — dominant colours of RGBA pixels, named perceptually: each sampled pixel is
 * converted to OKLCH (Björn Ottosson's OKLab in polar form: lightness, chroma, hue), where equal
 * steps look roughly equally different, and named by hue with lightness and chroma thresholds.
 * Near-black and near-white pixels (shadows, blown highlights) are counted but named only when
 * they dominate the picture, so a dark-shadowed green scene reads green, not black. Pure and
 * deterministic.
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
  /**
   * Smallest share a colour other than black and white needs, of the pixels that are neither
   * near-black nor near-white (default 0.15).
   */
  minShare?: number;
  /** Smallest share of all sampled pixels black or white needs to be named (default 0.4). */
  extremeShare?: number;
  /** Most colours returned (default 3). */
  max?: number;
}

/** A colour in OKLCH: lightness 0-1, chroma (0 grey, about 0.32 the most vivid sRGB), hue 0-360°. */
export interface Oklch {
  l: number;
  c: number;
  h: number;
}

/** sRGB channel (0-255) to linear light, tabulated once. */
const LINEAR = Float64Array.from({ length: 256 }, (_, i) => {
  const v = i / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
});

/** OKLCH of one sRGB colour (0-255 channels). */
export function toOklch(r: number, g: number, b: number): Oklch {
  const lr = LINEAR[r & 255], lg = LINEAR[g & 255], lb = LINEAR[b & 255];
  const l = Math.cbrt(0.4122214708 * lr + 0.5363325363 * lg + 0.0514459929 * lb);
  const m = Math.cbrt(0.2119034982 * lr + 0.6806995451 * lg + 0.1073969566 * lb);
  const s = Math.cbrt(0.0883024619 * lr + 0.2817188376 * lg + 0.6299787005 * lb);
  const L = 0.2104542553 * l + 0.793617785 * m - 0.0040720468 * s;
  const A = 1.9779984951 * l - 2.428592205 * m + 0.4505937099 * s;
  const B = 0.0259040371 * l + 0.7827717662 * m - 0.808675766 * s;
  const h = (Math.atan2(B, A) * 180) / Math.PI;
  return { l: L, c: Math.hypot(A, B), h: h < 0 ? h + 360 : h };
}

/** Below this lightness everything reads as black. */
const BLACK_LIGHTNESS = 0.18;
/** Below this chroma-to-lightness ratio (a saturation) a colour reads as a grey. */
const NEUTRAL_SATURATION = 0.07;
/** Below this chroma a colour reads as a grey however dark it is. */
const NEUTRAL_CHROMA = 0.025;

/**
 * The palette name of one sRGB colour (0-255 channels), from its OKLCH: very dark is black,
 * low chroma (absolute, or relative to lightness) is white, gray or black by lightness, else a hue name, with dark or dull oranges
 * and yellows named brown, dull yellow-greens green, and light reds and magentas pink.
 */
export function colorName(r: number, g: number, b: number): ColorName {
  const { l, c, h } = toOklch(r, g, b);
  if (l < BLACK_LIGHTNESS) return "black";
  if (c < NEUTRAL_CHROMA || c / l < NEUTRAL_SATURATION) {
    return l > 0.9 ? "white" : l < 0.35 ? "black" : "gray";
  }
  if (h < 45 || h >= 345) {
    if (l > 0.78) return "pink";
    return h >= 20 && h < 45 && l < 0.5 && c < 0.12 ? "brown" : "red";
  }
  if (h < 75) return l >= 0.65 && c >= 0.1 ? "orange" : "brown";
  if (h < 115) return l >= 0.7 && c >= 0.08 ? "yellow" : h < 95 ? "brown" : "green";
  if (h < 190) return "green";
  if (h < 285) return "blue";
  return l > 0.7 ? "pink" : "purple";
}

const NEUTRALS: ReadonlySet<ColorName> = new Set(["black", "white", "gray"]);
const EXTREMES: ReadonlySet<ColorName> = new Set(["black", "white"]);

/**
 * The dominant palette colours of RGBA pixels (4 bytes each), at most `max`: hues first, then
 * greys (gray, black, white), each most frequent first. The most frequent colour that is neither
 * black nor white (else the most frequent) always counts; black and white otherwise only with `extremeShare` of all sampled pixels, other colours with
 * `minShare` of the pixels that are neither black nor white. Pixels
 * more than half transparent are skipped; empty when nothing was sampled.
 *
 * @example
 * dominantColors(new Uint8Array([0, 0, 255, 255])); // ["blue"]
 */
export function dominantColors(
  rgba: ArrayLike<number>,
  options: DominantColorOptions = {},
): ColorName[] {
  const { maxSamples = 4096, minShare = 0.15, extremeShare = 0.4, max = 3 } = options;
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
  const extremes = (counts.get("black") ?? 0) + (counts.get("white") ?? 0);
  const middle = sampled - extremes;
  const ranked = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || COLOR_NAMES.indexOf(a[0]) - COLOR_NAMES.indexOf(b[0]));
  const named = (name: ColorName, n: number) =>
    EXTREMES.has(name) ? n / sampled >= extremeShare : middle > 0 && n / middle >= minShare;
  // One colour always counts: the most frequent that is neither black nor white, if any.
  const first = (ranked.find(([name]) => !EXTREMES.has(name)) ?? ranked[0])[0];
  return ranked
    .filter(([name, n]) => name === first || named(name, n))
    .slice(0, max)
    .map(([name]) => name)
    .sort((a, b) => Number(NEUTRALS.has(a)) - Number(NEUTRALS.has(b)));
}
