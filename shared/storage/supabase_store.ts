/**
 * @module supabase_store — blobs in a private Supabase Storage bucket, through supabase-js with
 * a service key (which bypasses Storage RLS; never hand it to a client).
 */
import { createClient } from "@supabase/supabase-js";
import { StageError } from "../errors.ts";
import {
  assertBlobPath,
  BlobNotFoundError,
  type BlobStore,
  checkedBlobPath,
} from "./blob_store.ts";

/** Options of {@linkcode SupabaseBlobStore}. */
export interface SupabaseBlobStoreOptions {
  /** The project URL (SUPABASE_URL). */
  supabaseUrl: string;
  /** A key acting as service_role: SUPABASE_SERVICE_ROLE_KEY or an `sb_secret_…` key. */
  serviceRoleKey: string;
  /** The bucket (STORAGE_BUCKET); private. */
  bucket: string;
  /** The fetch supabase-js uses; default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/** What Storage errors carry (StorageApiError has all three; network errors have none). */
interface StorageFailure {
  message: string;
  status?: number;
  statusCode?: string;
  code?: string;
}

/**
 * Storage answers most errors with HTTP 400 and the real status as a string in the body's
 * `statusCode` ("404", "409"); newer servers add `code` (NoSuchKey, KeyAlreadyExists).
 */
const statusOf = (e: StorageFailure) => Number(e.statusCode) || e.status || 0;
const isNotFound = (e: StorageFailure) =>
  e.code === "NoSuchKey" || (statusOf(e) === 404 && e.code !== "NoSuchBucket");
const isMissingBucket = (e: StorageFailure) =>
  e.code === "NoSuchBucket" || (statusOf(e) === 404 && e.code === undefined);
const isDuplicate = (e: StorageFailure) =>
  statusOf(e) === 409 || e.code === "KeyAlreadyExists" || e.code === "ResourceAlreadyExists" ||
  /already exists/i.test(e.message);

/** A Storage failure as a stage error: retryable when Storage or the network hiccupped. */
function failure(action: string, e: StorageFailure): StageError {
  const status = statusOf(e);
  const retryable = status === 0 || status === 408 || status === 429 || status >= 500;
  return new StageError("internal", `Cannot ${action}: ${e.message}`, retryable, { cause: e });
}

/** Blobs in Supabase Storage. */
export class SupabaseBlobStore implements BlobStore {
  readonly backend = "supabase" as const;
  readonly bucket: string;
  readonly #storage;
  readonly #files;

  constructor(opts: SupabaseBlobStoreOptions) {
    const client = createClient(opts.supabaseUrl, opts.serviceRoleKey, {
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
      global: opts.fetch ? { fetch: opts.fetch } : undefined,
    });
    this.bucket = opts.bucket;
    this.#storage = client.storage;
    this.#files = client.storage.from(opts.bucket);
  }

  /** Creates the bucket, private, when it does not exist (migrations may have made it). */
  async ensureBucket(): Promise<void> {
    const { error } = await this.#storage.getBucket(this.bucket);
    if (!error) return;
    if (!isMissingBucket(error as StorageFailure)) throw failure("read bucket", error);
    const created = await this.#storage.createBucket(this.bucket, { public: false });
    if (created.error && !isDuplicate(created.error)) {
      throw failure("create bucket", created.error);
    }
  }

  async put(sha256: string, bytes: Uint8Array, contentType: string): Promise<string> {
    const path = await checkedBlobPath(sha256, bytes, contentType);
    const { error } = await this.#files.upload(path, bytes, {
      contentType,
      upsert: false,
      cacheControl: "31536000", // content-addressed: the bytes at a path never change
    });
    // Already there means the same bytes are there: content addressing makes it success.
    if (error && !isDuplicate(error)) throw failure("store blob", error);
    return path;
  }

  async get(path: string): Promise<Uint8Array> {
    assertBlobPath(path);
    const { data, error } = await this.#files.download(path);
    if (error) throw isNotFound(error) ? new BlobNotFoundError(path) : failure("read blob", error);
    return new Uint8Array(await data.arrayBuffer());
  }

  async exists(path: string): Promise<boolean> {
    assertBlobPath(path);
    try {
      const { data } = await this.#files.exists(path);
      return data;
    } catch (err) {
      throw failure("check blob", err as StorageFailure);
    }
  }

  async signedUrl(path: string, expiresInSeconds: number): Promise<string> {
    assertBlobPath(path);
    const { data, error } = await this.#files.createSignedUrl(path, expiresInSeconds);
    if (error) {
      throw isNotFound(error) ? new BlobNotFoundError(path) : failure("sign blob URL", error);
    }
    return data.signedUrl;
  }
}
