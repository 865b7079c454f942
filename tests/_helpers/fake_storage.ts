/**
 * @module tests/_helpers/fake_storage — a small Supabase Storage server on loopback that speaks
 * the REST wire format supabase-js (storage-js 2.119) uses, for the calls Darkroom makes:
 *
 * | call | wire |
 * | --- | --- |
 * | getBucket / createBucket | GET /storage/v1/bucket/:id, POST /storage/v1/bucket `{id, name, public}` |
 * | upload | POST /storage/v1/object/:bucket/:path, raw body, `x-upsert`, `content-type`, `cache-control` -> `{Id, Key}` |
 * | download | GET /storage/v1/object/:bucket/:path (also /object/authenticated/...) |
 * | info / exists | GET /storage/v1/object/info/:bucket/:path -> FileObjectV2 JSON |
 * | createSignedUrl | POST /storage/v1/object/sign/:bucket/:path `{expiresIn}` -> `{signedURL}` |
 * | signed download | GET /storage/v1/object/sign/:bucket/:path?token=JWT (no auth header) |
 *
 * Errors are as storage-api renders them: HTTP 400 (500 for 500s) with the real status as a
 * string, `{statusCode: "404", code: "NoSuchKey", error, message}`. Requests need
 * `Authorization: Bearer <service role JWT>` and `apikey`, signed with `jwtSecret`, or the
 * `secretKey` (an `sb_secret_…` key) in `apikey` (and in Authorization, if there is one).
 */
import { jwtVerify, SignJWT } from "jose";

/** A stored object. */
export interface FakeObject {
  id: string;
  bytes: Uint8Array<ArrayBuffer>;
  contentType: string;
  cacheControl: string;
  createdAt: string;
}

/** A running fake Storage server. */
export interface FakeStorage extends AsyncDisposable {
  /** Use as SUPABASE_URL. */
  url: string;
  /** A service_role JWT the server accepts. */
  serviceRoleKey: string;
  /** Bucket id -> its objects by path. */
  buckets: Map<string, { public: boolean; objects: Map<string, FakeObject> }>;
  /** Every request seen, as "METHOD /path" (query dropped). */
  requests: string[];
  /** The next `times` requests get `status` (a Storage-shaped error body). */
  failNext(status: number, times?: number): void;
  close(): Promise<void>;
}

/** Options of {@linkcode startFakeStorage}. */
export interface FakeStorageOptions {
  /** Buckets that exist at start (private); default `["images"]`. */
  buckets?: string[];
  /** HS256 secret for the service role key and signed URL tokens; default a fixed test secret. */
  jwtSecret?: string;
  /** An `sb_secret_…` key the server also accepts, as Storage accepts a project's secret keys. */
  secretKey?: string;
}

type Body = Record<string, unknown>;

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/** A storage-api error: the HTTP status is 400 unless the real one is 500. */
const storageError = (status: number, code: string, error: string, message: string) =>
  json({ statusCode: String(status), code, error, message }, status >= 500 ? status : 400);

const noSuchKey = () => storageError(404, "NoSuchKey", "not_found", "Object not found");
const noSuchBucket = () =>
  storageError(404, "NoSuchBucket", "Bucket not found", "Bucket not found");
const duplicate = () =>
  storageError(409, "KeyAlreadyExists", "Duplicate", "The resource already exists");

/** Starts the fake on 127.0.0.1 (a free port). Close it, or `await using` it. */
export async function startFakeStorage(opts: FakeStorageOptions = {}): Promise<FakeStorage> {
  const secret = new TextEncoder().encode(
    opts.jwtSecret ?? "fake-storage-jwt-secret-with-at-least-32-characters",
  );
  const sign = (claims: Body, expiresIn: number) =>
    new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn).sign(secret);
  const serviceRoleKey = await sign({ role: "service_role", iss: "supabase-demo" }, 3600);
  const buckets: FakeStorage["buckets"] = new Map(
    (opts.buckets ?? ["images"]).map((id) => [id, { public: false, objects: new Map() }]),
  );
  const requests: string[] = [];
  const faults: number[] = [];

  const authorized = async (req: Request) => {
    const bearer = req.headers.get("authorization")?.replace(/^Bearer /, "") ?? "";
    const apikey = req.headers.get("apikey");
    if (!apikey) return false;
    if (opts.secretKey && apikey === opts.secretKey) {
      return !req.headers.has("authorization") || bearer === opts.secretKey;
    }
    try {
      const { payload } = await jwtVerify(bearer, secret);
      return payload.role === "service_role";
    } catch {
      return false;
    }
  };

  const objectRef = (rest: string) => {
    const [bucket, ...key] = rest.split("/").map(decodeURIComponent);
    return { bucket: buckets.get(bucket), bucketId: bucket, path: key.join("/") };
  };

  const info = (bucketId: string, path: string, o: FakeObject) => ({
    id: o.id,
    version: o.id,
    name: path,
    bucket_id: bucketId,
    created_at: o.createdAt,
    last_modified: o.createdAt,
    size: o.bytes.byteLength,
    cache_control: o.cacheControl,
    content_type: o.contentType,
    etag: `"${o.id}"`,
    metadata: {},
  });

  const objectResponse = (o: FakeObject, head: boolean) =>
    new Response(head ? null : o.bytes, {
      headers: {
        "content-type": o.contentType,
        "content-length": String(o.bytes.byteLength),
        "cache-control": o.cacheControl,
        etag: `"${o.id}"`,
        "last-modified": new Date(o.createdAt).toUTCString(),
      },
    });

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const route = url.pathname.replace(/^\/storage\/v1/, "");
    const method = req.method;

    // Signed downloads carry their authority in the token, not in a header.
    const signed = /^\/object\/sign\/(.+)$/.exec(route);
    if (signed && method === "GET") {
      const token = url.searchParams.get("token") ?? "";
      try {
        const { payload } = await jwtVerify(token, secret);
        const ref = objectRef(signed[1]);
        if (payload.url !== `${ref.bucketId}/${ref.path}`) throw new Error("url mismatch");
        const o = ref.bucket?.objects.get(ref.path);
        return o ? objectResponse(o, false) : noSuchKey();
      } catch (err) {
        const expired = (err as { code?: string }).code === "ERR_JWT_EXPIRED";
        return storageError(
          400,
          "InvalidJWT",
          "InvalidJWT",
          expired ? "jwt expired" : "invalid signature",
        );
      }
    }

    if (!(await authorized(req))) {
      return storageError(400, "InvalidJWT", "InvalidJWT", "invalid signature");
    }

    let m: RegExpExecArray | null;
    if ((m = /^\/bucket\/([^/]+)$/.exec(route)) && method === "GET") {
      const b = buckets.get(m[1]);
      if (!b) return noSuchBucket();
      const now = new Date().toISOString();
      return json({
        id: m[1],
        name: m[1],
        owner: "",
        public: b.public,
        file_size_limit: null,
        allowed_mime_types: null,
        created_at: now,
        updated_at: now,
      });
    }
    if (route === "/bucket" && method === "POST") {
      const body = await req.json() as Body;
      const id = String(body.id ?? body.name);
      if (buckets.has(id)) {
        return storageError(409, "BucketAlreadyExists", "Duplicate", "The resource already exists");
      }
      buckets.set(id, { public: body.public === true, objects: new Map() });
      return json({ name: id });
    }
    if ((m = /^\/object\/sign\/(.+)$/.exec(route)) && method === "POST") {
      const ref = objectRef(m[1]);
      if (!ref.bucket) return noSuchBucket();
      if (!ref.bucket.objects.has(ref.path)) return noSuchKey();
      const { expiresIn } = await req.json() as { expiresIn: number };
      const token = await sign({ url: `${ref.bucketId}/${ref.path}` }, expiresIn);
      return json({ signedURL: `/object/sign/${ref.bucketId}/${ref.path}?token=${token}` });
    }
    if ((m = /^\/object\/info\/(?:authenticated\/)?(.+)$/.exec(route)) && method === "GET") {
      const ref = objectRef(m[1]);
      if (!ref.bucket) return noSuchBucket();
      const o = ref.bucket.objects.get(ref.path);
      return o ? json(info(ref.bucketId, ref.path, o)) : noSuchKey();
    }
    if ((m = /^\/object\/(?:authenticated\/)?(.+)$/.exec(route))) {
      const ref = objectRef(m[1]);
      if (method === "POST" || method === "PUT") {
        const bytes = new Uint8Array(await req.arrayBuffer());
        if (!ref.bucket) return noSuchBucket();
        const upsert = method === "PUT" || req.headers.get("x-upsert") === "true";
        if (ref.bucket.objects.has(ref.path) && !upsert) return duplicate();
        const id = crypto.randomUUID();
        ref.bucket.objects.set(ref.path, {
          id,
          bytes,
          contentType: req.headers.get("content-type") ?? "application/octet-stream",
          cacheControl: req.headers.get("cache-control") ?? "no-cache",
          createdAt: new Date().toISOString(),
        });
        return json({ Id: id, Key: `${ref.bucketId}/${ref.path}` });
      }
      if (method === "GET" || method === "HEAD") {
        if (!ref.bucket) return noSuchBucket();
        const o = ref.bucket.objects.get(ref.path);
        if (!o) return method === "HEAD" ? new Response(null, { status: 400 }) : noSuchKey();
        return objectResponse(o, method === "HEAD");
      }
    }
    return json({
      statusCode: 404,
      error: "Not Found",
      message: `Route ${method}:${url.pathname} not found`,
    }, 404);
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    requests.push(`${req.method} ${new URL(req.url).pathname}`);
    const fault = faults.shift();
    if (fault !== undefined) {
      await req.body?.cancel();
      return storageError(fault, "InternalError", "Internal", `Injected failure ${fault}`);
    }
    return await handle(req);
  });

  const close = () => server.shutdown();
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    serviceRoleKey,
    buckets,
    requests,
    failNext(status, times = 1) {
      for (let i = 0; i < times; i++) faults.push(status);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
