/**
 * @module tests/integration/blob_store_test — both BlobStore backends: the filesystem store in a
 * temp directory, and the Supabase store through the real supabase-js client against the fake
 * Storage server on loopback.
 */
import assert from "node:assert/strict";
import {
  assertBlobPath,
  BlobNotFoundError,
  blobPath,
  type BlobStore,
  contentTypeOfPath,
} from "../../shared/storage/blob_store.ts";
import {
  FsBlobStore,
  parseFsSignedUrl,
  verifyFsSignedToken,
} from "../../shared/storage/fs_store.ts";
import { SupabaseBlobStore } from "../../shared/storage/supabase_store.ts";
import { sha256Hex } from "../../shared/net/hash.ts";
import { StageError } from "../../shared/errors.ts";
import { startFakeStorage } from "../_helpers/fake_storage.ts";

const JPEG = await Deno.readFile(
  new URL("../fixtures/images/nikon_d70.jpg", import.meta.url),
);
const JPEG_SHA = "8e2a627b96ca71c20129161f46bda3d338407da99bd11b1055adb27af27d7ef5"; // oracle.json
const SECRET = "test-signing-secret";
const BASE = "http://127.0.0.1:54321";

async function tempStore(now?: () => number) {
  const root = await Deno.makeTempDir({ prefix: "darkroom-blobs-" });
  const store = new FsBlobStore({ root, publicBaseUrl: BASE, signingSecret: SECRET, now });
  return {
    root,
    store,
    [Symbol.asyncDispose]: () => Deno.remove(root, { recursive: true }),
  };
}

/** The behaviour both backends share. */
async function contract(store: BlobStore) {
  const path = await store.put(JPEG_SHA, JPEG, "image/jpeg");
  assert.equal(path, `sha256/8e/2a/${JPEG_SHA}.jpg`);
  assert.equal(await store.exists(path), true);
  assert.deepEqual(await store.get(path), JPEG);
  assert.equal(await store.put(JPEG_SHA, JPEG, "image/jpeg"), path, "idempotent");

  const missing = blobPath("0".repeat(64), "image/png");
  assert.equal(await store.exists(missing), false);
  const err = await store.get(missing).catch((e) => e);
  assert.ok(err instanceof BlobNotFoundError);
  assert.equal(err.code, "internal");
  assert.equal(err.message, `Cannot read blob: ${missing} not found`);

  await assert.rejects(store.put("f".repeat(64), JPEG, "image/jpeg"), /sha256 mismatch/);
  await assert.rejects(store.put("not-a-hash", JPEG, "image/jpeg"), /Invalid sha256/);
  await assert.rejects(store.get("sha256/../../etc/passwd"), /Invalid blob path/);
}

Deno.test("blobPath() is deterministic from sha256 and content type", () => {
  assert.equal(blobPath(JPEG_SHA, "image/jpeg"), `sha256/8e/2a/${JPEG_SHA}.jpg`);
  assert.equal(blobPath(JPEG_SHA, "IMAGE/PNG; charset=binary"), `sha256/8e/2a/${JPEG_SHA}.png`);
  assert.equal(blobPath(JPEG_SHA, "application/x-unknown"), `sha256/8e/2a/${JPEG_SHA}`);
  assert.equal(contentTypeOfPath(`sha256/8e/2a/${JPEG_SHA}.tif`), "image/tiff");
  assert.equal(contentTypeOfPath(`sha256/8e/2a/${JPEG_SHA}`), "application/octet-stream");
  assert.throws(() => assertBlobPath(`sha256/00/2a/${JPEG_SHA}.jpg`), /Invalid blob path/);
  assert.throws(() => blobPath(JPEG_SHA.toUpperCase(), "image/jpeg"), /Invalid sha256/);
});

Deno.test("FsBlobStore keeps the BlobStore contract", async () => {
  await using t = await tempStore();
  assert.equal(t.store.backend, "fs");
  await contract(t.store);
  const file = `${t.root}/sha256/8e/2a/${JPEG_SHA}.jpg`;
  assert.equal(await sha256Hex(await Deno.readFile(file)), JPEG_SHA);
});

Deno.test("FsBlobStore.put() does not rewrite an existing blob and leaves no temp files", async () => {
  await using t = await tempStore();
  const path = await t.store.put(JPEG_SHA, JPEG, "image/jpeg");
  const before = await Deno.stat(t.store.filePath(path));
  await new Promise((r) => setTimeout(r, 20));
  await Promise.all([1, 2, 3].map(() => t.store.put(JPEG_SHA, JPEG, "image/jpeg")));
  const after = await Deno.stat(t.store.filePath(path));
  assert.equal(after.mtime?.getTime(), before.mtime?.getTime());
  assert.equal(after.ino, before.ino);
  const names = [...Deno.readDirSync(`${t.root}/sha256/8e/2a`)].map((e) => e.name);
  assert.deepEqual(names, [`${JPEG_SHA}.jpg`]);
});

Deno.test("FsBlobStore writes concurrent first puts of the same bytes safely", async () => {
  await using t = await tempStore();
  const paths = await Promise.all(
    [1, 2, 3, 4].map(() => t.store.put(JPEG_SHA, JPEG, "image/jpeg")),
  );
  assert.equal(new Set(paths).size, 1);
  assert.deepEqual(await t.store.get(paths[0]), JPEG);
  assert.equal([...Deno.readDirSync(`${t.root}/sha256/8e/2a`)].length, 1);
});

Deno.test("FsBlobStore.signedUrl() verifies until it expires, and not when tampered with", async () => {
  let clock = Date.parse("2024-05-01T12:00:00Z");
  await using t = await tempStore(() => clock);
  const path = await t.store.put(JPEG_SHA, JPEG, "image/jpeg");
  const url = await t.store.signedUrl(path, 60);
  assert.ok(url.startsWith(`${BASE}/storage/v1/object/sign/images/${path}?token=`), url);

  const parts = parseFsSignedUrl(url);
  assert.ok(parts);
  assert.equal(parts.bucket, "images");
  assert.equal(parts.path, path);
  assert.equal(Number(parts.expires), clock / 1000 + 60);
  const check = (over: Partial<Parameters<typeof verifyFsSignedToken>[0]> = {}) =>
    verifyFsSignedToken({ secret: SECRET, ...parts, now: clock, ...over });

  assert.equal(await check(), true);
  clock += 60_000;
  assert.equal(await check(), true, "valid through its last second");
  clock += 1_000;
  assert.equal(await check(), false, "expired");
  clock -= 61_000;

  const other = blobPath("0".repeat(64), "image/jpeg");
  assert.equal(await check({ path: other }), false, "another path");
  assert.equal(await check({ bucket: "private" }), false, "another bucket");
  assert.equal(await check({ expires: Number(parts.expires) + 3600 }), false, "longer expiry");
  assert.equal(await check({ expires: `${parts.expires}.0` }), false, "expiry spelled otherwise");
  assert.equal(await check({ secret: "other-secret" }), false, "another secret");
  const flipped = parts.token.slice(0, -1) + (parts.token.endsWith("A") ? "B" : "A");
  assert.equal(await check({ token: flipped }), false, "forged token");
  assert.equal(await check({ token: "%%%" }), false, "garbage token");
  assert.equal(parseFsSignedUrl(`${BASE}/storage/v1/object/public/images/${path}`), null);
});

Deno.test("SupabaseBlobStore keeps the BlobStore contract against the Storage wire format", async () => {
  await using fake = await startFakeStorage();
  const store = new SupabaseBlobStore({
    supabaseUrl: fake.url,
    serviceRoleKey: fake.serviceRoleKey,
    bucket: "images",
  });
  assert.equal(store.backend, "supabase");
  await contract(store);
  const stored = fake.buckets.get("images")!.objects.get(`sha256/8e/2a/${JPEG_SHA}.jpg`)!;
  assert.equal(stored.contentType, "image/jpeg");
  assert.equal(stored.cacheControl, "max-age=31536000");
  const uploads = fake.requests.filter((r) => r.startsWith("POST /storage/v1/object/images/"));
  assert.equal(uploads.length, 2, "the second put hit 'already exists' and counted as success");
  assert.ok(
    fake.requests.includes(`GET /storage/v1/object/info/images/sha256/8e/2a/${JPEG_SHA}.jpg`),
  );
});

Deno.test("SupabaseBlobStore.signedUrl() returns a URL that downloads the bytes without a key", async () => {
  await using fake = await startFakeStorage();
  const store = new SupabaseBlobStore({
    supabaseUrl: fake.url,
    serviceRoleKey: fake.serviceRoleKey,
    bucket: "images",
  });
  const path = await store.put(JPEG_SHA, JPEG, "image/jpeg");
  const url = await store.signedUrl(path, 60);
  assert.ok(url.startsWith(`${fake.url}/storage/v1/object/sign/images/${path}?token=`), url);
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "image/jpeg");
  assert.deepEqual(new Uint8Array(await res.arrayBuffer()), JPEG);

  const forged = await fetch(url.replace(/token=.*/, "token=nope"));
  assert.equal(forged.status, 400);
  assert.equal((await forged.json()).code, "InvalidJWT");

  const missing = blobPath("0".repeat(64), "image/jpeg");
  await assert.rejects(store.signedUrl(missing, 60), BlobNotFoundError);
});

Deno.test("SupabaseBlobStore.ensureBucket() creates a missing private bucket once", async () => {
  await using fake = await startFakeStorage({ buckets: [] });
  const store = new SupabaseBlobStore({
    supabaseUrl: fake.url,
    serviceRoleKey: fake.serviceRoleKey,
    bucket: "darkroom",
  });
  await store.ensureBucket();
  await store.ensureBucket();
  assert.equal(fake.buckets.get("darkroom")?.public, false);
  assert.equal(fake.requests.filter((r) => r === "POST /storage/v1/bucket").length, 1);
});

Deno.test("SupabaseBlobStore maps Storage failures to internal errors, retryable when transient", async () => {
  await using fake = await startFakeStorage();
  const store = new SupabaseBlobStore({
    supabaseUrl: fake.url,
    serviceRoleKey: fake.serviceRoleKey,
    bucket: "images",
  });
  fake.failNext(503);
  const transient = await store.put(JPEG_SHA, JPEG, "image/jpeg").catch((e) => e);
  assert.ok(transient instanceof StageError);
  assert.equal(transient.code, "internal");
  assert.equal(transient.retryable, true);
  assert.equal(transient.message, "Cannot store blob: Injected failure 503");

  const wrongKey = new SupabaseBlobStore({
    supabaseUrl: fake.url,
    serviceRoleKey: "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.bad",
    bucket: "images",
  });
  const denied = await wrongKey.put(JPEG_SHA, JPEG, "image/jpeg").catch((e) => e);
  assert.equal(denied.code, "internal");
  assert.equal(denied.retryable, false);
  await assert.rejects(wrongKey.exists(blobPath(JPEG_SHA, "image/jpeg")), StageError);

  const noBucket = new SupabaseBlobStore({
    supabaseUrl: fake.url,
    serviceRoleKey: fake.serviceRoleKey,
    bucket: "nope",
  });
  const missingBucket = await noBucket.get(blobPath(JPEG_SHA, "image/jpeg")).catch((e) => e);
  assert.ok(
    !(missingBucket instanceof BlobNotFoundError),
    "a missing bucket is not a missing blob",
  );
  assert.equal(missingBucket.retryable, false);

  const down = new SupabaseBlobStore({
    supabaseUrl: "http://127.0.0.1:9", // discard port: nothing listens
    serviceRoleKey: fake.serviceRoleKey,
    bucket: "images",
  });
  const offline = await down.put(JPEG_SHA, JPEG, "image/jpeg").catch((e) => e);
  assert.equal(offline.code, "internal");
  assert.equal(offline.retryable, true);
});
