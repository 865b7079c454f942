/**
 * @module fs_store — the local blob store: files under a root directory, written atomically
 * (temp file + rename), and signed URLs shaped like Supabase Storage's
 * (`/storage/v1/object/sign/<bucket>/<path>?token=…&expires=…`) that the platform serves.
 */
import {
  assertBlobPath,
  BlobNotFoundError,
  type BlobStore,
  checkedBlobPath,
} from "./blob_store.ts";

/** Options of {@linkcode FsBlobStore}. */
export interface FsBlobStoreOptions {
  /** Directory holding the blobs (the platform passes `${DATA_DIR}/storage`). */
  root: string;
  /** Origin the platform serves on, e.g. `http://127.0.0.1:54321`. */
  publicBaseUrl: string;
  /** Secret the signed URLs' HMAC is keyed with. */
  signingSecret: string;
  /** Bucket name in signed URLs; default `images`. */
  bucket?: string;
  /** Clock in ms, for tests; default `Date.now`. */
  now?: () => number;
}

/** Blobs on the local filesystem. */
export class FsBlobStore implements BlobStore {
  readonly backend = "fs" as const;
  readonly bucket: string;
  readonly #root: string;
  readonly #base: string;
  readonly #secret: string;
  readonly #now: () => number;

  constructor(opts: FsBlobStoreOptions) {
    this.#root = opts.root.replace(/\/+$/, "");
    this.#base = opts.publicBaseUrl.replace(/\/+$/, "");
    this.#secret = opts.signingSecret;
    this.bucket = opts.bucket ?? "images";
    this.#now = opts.now ?? Date.now;
  }

  /** The file a blob path maps to. */
  filePath(path: string): string {
    assertBlobPath(path);
    return `${this.#root}/${path}`;
  }

  async put(sha256: string, bytes: Uint8Array, contentType: string): Promise<string> {
    const path = await checkedBlobPath(sha256, bytes, contentType);
    const file = this.filePath(path);
    if (await this.exists(path)) return path;
    await Deno.mkdir(file.slice(0, file.lastIndexOf("/")), { recursive: true });
    // Rename is atomic: a reader sees no file or the whole file, never a torn one. Two writers
    // racing both rename identical bytes into place, which is harmless.
    const temp = `${file}.${crypto.randomUUID()}.tmp`;
    try {
      await Deno.writeFile(temp, bytes);
      await Deno.rename(temp, file);
    } catch (err) {
      await Deno.remove(temp).catch(() => {});
      throw err;
    }
    return path;
  }

  async get(path: string): Promise<Uint8Array> {
    try {
      return await Deno.readFile(this.filePath(path));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw new BlobNotFoundError(path);
      throw err;
    }
  }

  async exists(path: string): Promise<boolean> {
    try {
      return (await Deno.stat(this.filePath(path))).isFile;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
  }

  async signedUrl(path: string, expiresInSeconds: number): Promise<string> {
    assertBlobPath(path);
    const expires = Math.floor(this.#now() / 1000) + expiresInSeconds;
    const token = await signFsToken(this.#secret, this.bucket, path, expires);
    return `${this.#base}/storage/v1/object/sign/${this.bucket}/${path}?token=${token}&expires=${expires}`;
  }
}

const encoder = new TextEncoder();

function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
}

/** What the HMAC covers: bucket, path and expiry, so none can be swapped. */
const signedMessage = (bucket: string, path: string, expires: number) =>
  encoder.encode(`${bucket}/${path}\n${expires}`);

function toBase64Url(bytes: Uint8Array): string {
  const base64 = btoa(String.fromCharCode(...bytes));
  return base64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  try {
    return Uint8Array.from(
      atob(text.replace(/-/g, "+").replace(/_/g, "/")),
      (c) => c.charCodeAt(0),
    );
  } catch {
    return null;
  }
}

/** The token of a local signed URL: base64url HMAC-SHA256 of bucket, path and expiry (Unix s). */
export async function signFsToken(
  secret: string,
  bucket: string,
  path: string,
  expires: number,
): Promise<string> {
  const mac = await crypto.subtle.sign(
    "HMAC",
    await hmacKey(secret),
    signedMessage(bucket, path, expires),
  );
  return toBase64Url(new Uint8Array(mac));
}

/** The parts of a local signed URL that {@linkcode verifyFsSignedToken} checks. */
export interface FsSignedToken {
  secret: string;
  bucket: string;
  path: string;
  token: string;
  /** Unix seconds, as in the URL's `expires` parameter. */
  expires: number | string;
  /** Clock in ms; default `Date.now()`. */
  now?: number;
}

/**
 * True when `token` was signed for this bucket, path and expiry with `secret` and has not
 * expired. The comparison is Web Crypto's `verify`, in constant time.
 *
 * @example
 * const u = new URL(req.url);
 * const ok = await verifyFsSignedToken({
 *   secret, bucket, path, token: u.searchParams.get("token") ?? "",
 *   expires: u.searchParams.get("expires") ?? "",
 * });
 */
export async function verifyFsSignedToken(t: FsSignedToken): Promise<boolean> {
  const expires = typeof t.expires === "number" ? t.expires : Number(t.expires);
  if (!Number.isSafeInteger(expires) || String(expires) !== String(t.expires).trim()) return false;
  if ((t.now ?? Date.now()) / 1000 > expires) return false;
  const mac = fromBase64Url(t.token);
  if (!mac || mac.byteLength !== 32) return false;
  return await crypto.subtle.verify(
    "HMAC",
    await hmacKey(t.secret),
    mac as Uint8Array<ArrayBuffer>,
    signedMessage(t.bucket, t.path, expires),
  );
}

/**
 * Splits a local signed URL (or its path and query) into bucket, path, token and expiry, or
 * returns null when it is not one (including a malformed percent-encoding).
 */
export function parseFsSignedUrl(
  url: string | URL,
): { bucket: string; path: string; token: string; expires: string } | null {
  const u = new URL(url, "http://localhost");
  const m = /^\/storage\/v1\/object\/sign\/([^/]+)\/(.+)$/.exec(u.pathname);
  const token = u.searchParams.get("token");
  const expires = u.searchParams.get("expires");
  if (!m || token === null || expires === null) return null;
  try {
    return { bucket: decodeURIComponent(m[1]), path: decodeURIComponent(m[2]), token, expires };
  } catch {
    return null; // a malformed percent-encoding (URIError) is not a signed URL
  }
}
