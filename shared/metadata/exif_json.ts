/**
 * @module metadata/exif_json — turns whatever exifr returned into a JSON-safe value that
 * Postgres jsonb accepts: no binary blobs, no undefined, no NaN, no NUL characters, no lone
 * surrogates, bounded string, array, object and total size.
 */

/** Limits on the JSON-safe copy; every field is optional. */
export interface JsonSafeLimits {
  /** Longest string kept, in UTF-16 units; longer ones are cut (default 500). */
  maxString?: number;
  /** Most array items kept (default 64). */
  maxArray?: number;
  /** Most keys kept per object (default 200). */
  maxKeys?: number;
  /** Deepest nesting kept (default 6). */
  maxDepth?: number;
  /** Rough budget of JSON characters for the whole value (default 32768). */
  maxTotal?: number;
  /** Byte arrays up to this length become a string (printable ASCII) or numbers (default 16). */
  maxSmallBinary?: number;
}

const DEFAULTS: Required<JsonSafeLimits> = {
  maxString: 500,
  maxArray: 64,
  maxKeys: 200,
  maxDepth: 6,
  maxTotal: 32768,
  maxSmallBinary: 16,
};

/** Keys never copied: blobs or offsets of blobs, not facts about the photo. */
const DROPPED_KEYS = new Set([
  "MakerNote",
  "UserComment",
  "ThumbnailOffset",
  "ThumbnailLength",
  "JPEGInterchangeFormat",
  "JPEGInterchangeFormatLength",
  "PrintIM",
  "PhotoshopSettings",
  "ApplicationNotes",
  "__proto__",
]);

/** A string with NULs and other C0 controls (bar tab and newlines) removed, lone surrogates replaced, trimmed. */
export function cleanString(s: string): string {
  return s
    // deno-lint-ignore no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, "")
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd")
    .trim();
}

/**
 * A JSON-safe copy of `value` within `limits`; `undefined` when nothing of it is worth keeping
 * (so callers drop the key).
 *
 * @example
 * toJsonSafe({ ExifVersion: new Uint8Array([48, 50, 50, 48]) }); // { ExifVersion: "0220" }
 */
export function toJsonSafe(value: unknown, limits: JsonSafeLimits = {}): unknown {
  const opts = { ...DEFAULTS, ...limits };
  const budget = { left: opts.maxTotal };
  return copy(value, 0, opts, budget);
}

function copy(
  v: unknown,
  depth: number,
  o: Required<JsonSafeLimits>,
  b: { left: number },
): unknown {
  if (b.left <= 0) return undefined;
  switch (typeof v) {
    case "string": {
      let s = cleanString(v);
      if (s === "") return undefined;
      if (s.length > o.maxString) s = cleanString(s.slice(0, o.maxString)) + "…";
      return spend(b, s.length + 2, s);
    }
    case "number":
      return Number.isFinite(v) ? spend(b, 8, v === 0 ? 0 : v) : undefined; // -0 -> 0
    case "boolean":
      return spend(b, 5, v);
    case "bigint":
      return spend(b, 20, Number.isSafeInteger(Number(v)) ? Number(v) : v.toString());
    case "object":
      break;
    default:
      return undefined; // undefined, function, symbol
  }
  if (v === null) return spend(b, 4, null);
  if (v instanceof Date) {
    return Number.isNaN(v.getTime()) ? undefined : spend(b, 26, v.toISOString());
  }
  if (depth >= o.maxDepth) return undefined;
  if (v instanceof ArrayBuffer) return copyBytes(new Uint8Array(v), o, b);
  if (ArrayBuffer.isView(v)) {
    if (v instanceof Uint8Array || v instanceof Uint8ClampedArray) return copyBytes(v, o, b);
    if (v instanceof DataView) return undefined;
    const items = Array.from(v as unknown as ArrayLike<number | bigint>);
    return items.length > o.maxArray ? undefined : copyArray(items, depth, o, b);
  }
  if (Array.isArray(v)) return copyArray(v, depth, o, b);
  const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
  const out: Record<string, unknown> = {};
  let kept = 0;
  for (const [rawKey, item] of entries) {
    if (kept >= o.maxKeys || b.left <= 0) break;
    if (typeof rawKey !== "string" && typeof rawKey !== "number") continue;
    const key = cleanString(String(rawKey)).slice(0, 100);
    if (key === "" || DROPPED_KEYS.has(key)) continue;
    const safe = copy(item, depth + 1, o, b);
    if (safe === undefined) continue;
    out[key] = safe;
    b.left -= key.length + 4;
    kept++;
  }
  return kept > 0 ? out : undefined;
}

function copyArray(
  items: unknown[],
  depth: number,
  o: Required<JsonSafeLimits>,
  b: { left: number },
) {
  const out: unknown[] = [];
  for (const item of items.slice(0, o.maxArray)) {
    const safe = copy(item, depth + 1, o, b);
    if (safe !== undefined) out.push(safe);
  }
  return out.length > 0 ? out : undefined;
}

/** Small byte arrays (version tags, refs) are kept readable; larger ones are blobs and dropped. */
function copyBytes(
  bytes: Uint8Array | Uint8ClampedArray,
  o: Required<JsonSafeLimits>,
  b: { left: number },
) {
  if (bytes.length === 0 || bytes.length > o.maxSmallBinary) return undefined;
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  const body = bytes.subarray(0, end);
  if (body.length > 0 && body.every((c) => c >= 0x20 && c < 0x7f)) {
    return spend(b, body.length + 2, String.fromCharCode(...body));
  }
  return spend(b, bytes.length * 4, Array.from(bytes));
}

function spend<T>(b: { left: number }, cost: number, value: T): T | undefined {
  if (b.left < cost) {
    b.left = 0;
    return undefined;
  }
  b.left -= cost;
  return value;
}
