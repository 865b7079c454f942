/**
 * @module blob_store — image bytes stored content-addressed behind one interface, with a
 * filesystem backend (local) and a Supabase Storage backend (production). The path is a pure
 * function of the sha256 and the content type: `sha256/ab/cd/<sha256>.<ext>`.
 */
import { StageError } from "../errors.ts";
import { sha256Hex } from "../net/hash.ts";

/** Where blobs live; both backends behave the same. */
export interface BlobStore {
  readonly backend: "fs" | "supabase";
  /** Stores bytes content-addressed; returns the storage path. Idempotent: same bytes → same path, no rewrite. */
  put(sha256: string, bytes: Uint8Array, contentType: string): Promise<string>;
  /** The bytes at `path`; throws {@linkcode BlobNotFoundError} when there are none. */
  get(path: string): Promise<Uint8Array>;
  /** Whether `path` holds a blob. */
  exists(path: string): Promise<boolean>;
  /** A URL a client can GET for a limited time (fs: a local signed URL the platform serves later; supabase: createSignedUrl). */
  signedUrl(path: string, expiresInSeconds: number): Promise<string>;
}

/** A blob that is not there: permanent for the stage that needed it. */
export class BlobNotFoundError extends StageError {
  readonly path: string;
  constructor(path: string) {
    super("internal", `Cannot read blob: ${path} not found`, false);
    this.path = path;
  }
}

/** File extension per image MIME type; any other type gets no extension. */
const EXTENSIONS: Record<string, string> = {
  "image/jpeg": "jpg",
  "image/png": "png",
  "image/apng": "apng",
  "image/webp": "webp",
  "image/gif": "gif",
  "image/tiff": "tif",
  "image/heic": "heic",
  "image/heif": "heif",
  "image/avif": "avif",
  "image/bmp": "bmp",
};
const MIME_BY_EXTENSION = Object.fromEntries(Object.entries(EXTENSIONS).map(([m, e]) => [e, m]));

const SHA256 = /^[0-9a-f]{64}$/;
const PATH = /^sha256\/([0-9a-f]{2})\/([0-9a-f]{2})\/([0-9a-f]{64})(?:\.([a-z0-9]+))?$/;

/**
 * The storage path of a blob: `sha256/ab/cd/<sha256>.<ext>` (`ab`, `cd`: the hash's first two
 * bytes, so no directory grows past 256 entries).
 *
 * @example
 * blobPath("8e2a62…", "image/jpeg"); // "sha256/8e/2a/8e2a62….jpg"
 */
export function blobPath(sha256: string, contentType: string): string {
  if (!SHA256.test(sha256)) throw new Error(`Invalid sha256: ${JSON.stringify(sha256)}`);
  const ext = EXTENSIONS[contentType.split(";")[0].trim().toLowerCase()];
  return `sha256/${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256}${ext ? `.${ext}` : ""}`;
}

/** Throws unless `path` is a well-formed blob path (so no `..` ever reaches a backend). */
export function assertBlobPath(path: string): void {
  const m = PATH.exec(path);
  if (!m || m[1] !== m[3].slice(0, 2) || m[2] !== m[3].slice(2, 4)) {
    throw new Error(`Invalid blob path: ${JSON.stringify(path)}`);
  }
}

/** The content type a blob path stands for (to serve it); `application/octet-stream` if unknown. */
export function contentTypeOfPath(path: string): string {
  const ext = PATH.exec(path)?.[4];
  return (ext && MIME_BY_EXTENSION[ext]) || "application/octet-stream";
}

/**
 * The path for `put`, after checking that `sha256` really is the digest of `bytes`: a wrong
 * hash would break content addressing for good.
 */
export async function checkedBlobPath(
  sha256: string,
  bytes: Uint8Array,
  contentType: string,
): Promise<string> {
  const path = blobPath(sha256, contentType);
  const actual = await sha256Hex(bytes);
  if (actual !== sha256) {
    throw new Error(`sha256 mismatch: given ${sha256}, bytes hash to ${actual}`);
  }
  return path;
}
