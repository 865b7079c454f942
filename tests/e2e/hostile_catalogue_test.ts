// The hostile-input catalogue: one table, each row a bad input and the one outcome it must get —
// a 4xx JSON error with its code, or a task that fails with its code (or completes, for damage the
// pipeline is meant to survive) — never a 5xx, a stack trace, a hang or a dead worker. Request,
// network and content level, over real HTTP to the local platform in-process: one with the
// private network blocked (the default), one with it allowed (so loopback servers can play the
// hostile remote end). Prints the count by outcome. Runs on PGlite, or PostgreSQL (DATABASE_URL).
import assert from "node:assert/strict";
import { fixtureBytes, startFixtureServer } from "../_helpers/fixtures.ts";
import {
  gifFrameBomb,
  heifZeroSizeBox,
  jpegScanBomb,
  pngIccpBomb,
  tiffValueBomb,
} from "../_helpers/hostile_images.ts";
import {
  gifOfFrames,
  jpegWithExif,
  pngDeclaring,
  rawHttpServer,
  tiffEntriesOutside,
  tiffIfdOutside,
  tiffSelfReferencing,
  tinyBmp,
} from "../_helpers/hostile_files.ts";
import { startTestPlatform, type TestPlatform } from "../_helpers/platform.ts";

type Level = "request" | "network" | "content";

/** A request sent as it is. `auth` default "user" (an authenticated user's JWT). */
interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  auth?: "user" | "anon" | "none";
}

/**
 * One row: a raw request, or an imageUrl for POST /tasks (on the `open` platform when the hostile
 * end is a loopback server), and the outcome: "<status> <code>" of a 4xx, "failed <code>" of a
 * task, or "completed" (with ", partial" when the metadata must be marked so).
 */
interface Case {
  level: Level;
  name: string;
  request?: RawRequest | ((ctx: Ctx) => RawRequest);
  imageUrl?: string | ((ctx: Ctx) => string);
  platform?: "strict" | "open";
  /** Requests sent first (e.g. the first use of an Idempotency-Key). */
  before?: (ctx: Ctx) => RawRequest[];
  expect: string;
}

interface Ctx {
  /** Loopback server of hostile content (see `contentServer`). */
  content: string;
  fixtures: string;
  lyingLong: string;
  lyingShort: string;
  plainPort: number;
  /** A server of its own that redirects every request to itself. */
  loop: string;
}

const json = (v: unknown) => JSON.stringify(v);
const post = (body: unknown, extra: Partial<RawRequest> = {}): RawRequest => ({
  method: "POST",
  path: "/tasks",
  headers: { "content-type": "application/json" },
  body: typeof body === "string" ? body : json(body),
  ...extra,
});
const task = (imageUrl: string) => post({ imageUrl });
const batch = (tasks: unknown) => ({ ...post({ tasks }), path: "/tasks/batch" });
const OK_URL = "https://example.com/photo.jpg";
const UUID = "3f0c2a8e-8f5e-4d7b-9c1a-2b3c4d5e6f70";

const CASES: Case[] = [
  // ---- request level: bodies and types ----
  {
    level: "request",
    name: "body not JSON",
    request: post("{imageUrl:"),
    expect: "400 invalid_request",
  },
  { level: "request", name: "empty body", request: post(""), expect: "400 invalid_request" },
  {
    level: "request",
    name: "body a JSON array",
    request: post([OK_URL]),
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "body JSON null",
    request: post("null"),
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "body a JSON string",
    request: post(json(OK_URL)),
    expect: "400 invalid_request",
  },
  { level: "request", name: "imageUrl missing", request: post({}), expect: "400 invalid_request" },
  {
    level: "request",
    name: "imageUrl a number",
    request: post({ imageUrl: 42 }),
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "imageUrl an object",
    request: post({ imageUrl: { href: OK_URL } }),
    expect: "400 invalid_request",
  },
  { level: "request", name: "imageUrl empty", request: task(""), expect: "400 invalid_request" },
  {
    level: "request",
    name: "imageUrl of 3000 characters",
    request: task(`https://example.com/${"a".repeat(3000)}`),
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "unknown field",
    request: post({ imageUrl: OK_URL, priority: 1 }),
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "options not an object",
    request: post({ imageUrl: OK_URL, options: [1] }),
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "options over 4 KiB",
    request: post({ imageUrl: OK_URL, options: { x: "a".repeat(5000) } }),
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "options with NUL",
    request: post({ imageUrl: OK_URL, options: { x: "a\u0000b" } }),
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "body of 2 MB",
    request: post({ imageUrl: OK_URL, options: { x: "a".repeat(2_000_000) } }),
    expect: "413 payload_too_large",
  },
  {
    level: "request",
    name: "Content-Type text/plain",
    request: post({ imageUrl: OK_URL }, { headers: { "content-type": "text/plain" } }),
    expect: "415 unsupported_media_type",
  },
  {
    level: "request",
    name: "Content-Type form",
    request: post("imageUrl=x", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
    }),
    expect: "415 unsupported_media_type",
  },
  {
    level: "request",
    name: "invalid UTF-8 body",
    request: post(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])),
    expect: "400 invalid_request",
  },
  // ---- request level: URL schemes, userinfo, hosts ----
  ...[
    "ftp://example.com/a.jpg",
    "file:///etc/passwd",
    "data:image/png;base64,iVBORw0KGgo=",
    "javascript:alert(1)",
    "gopher://example.com/",
    "ws://example.com/a.jpg",
    "blob:https://example.com/x",
    "mailto:a@example.com",
    "/images/a.jpg",
    "http://",
    "HTTP//example.com",
  ]
    .map((url): Case => ({
      level: "request",
      name: `imageUrl ${url}`,
      request: task(url),
      expect: "400 invalid_request",
    })),
  {
    level: "request",
    name: "callbackUrl ftp",
    request: post({ imageUrl: OK_URL, callbackUrl: "ftp://example.com/" }),
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "callbackUrl loopback",
    request: post({ imageUrl: OK_URL, callbackUrl: "http://127.0.0.1:9/hook" }),
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "callbackUrl metadata address",
    request: post({ imageUrl: OK_URL, callbackUrl: "http://169.254.169.254/" }),
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "callbackUrl *.localhost",
    request: post({ imageUrl: OK_URL, callbackUrl: "http://hooks.localhost/" }),
    expect: "400 invalid_request",
  },
  // ---- request level: batches ----
  { level: "request", name: "batch empty", request: batch([]), expect: "400 invalid_request" },
  {
    level: "request",
    name: "batch of 101",
    request: batch(Array.from({ length: 101 }, () => ({ imageUrl: OK_URL }))),
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "batch not an array",
    request: batch({ imageUrl: OK_URL }),
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "batch with one ftp URL",
    request: batch([{ imageUrl: OK_URL }, { imageUrl: "ftp://x/" }]),
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "batch item with unknown field",
    request: batch([{ imageUrl: OK_URL, x: 1 }]),
    expect: "400 invalid_request",
  },
  // ---- request level: ids ----
  {
    level: "request",
    name: "GET /tasks/not-a-uuid",
    request: { path: "/tasks/not-a-uuid" },
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "GET /tasks/<SQL>",
    request: { path: `/tasks/${encodeURIComponent("1' or '1'='1")}` },
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "GET /tasks/<uuid with NUL>",
    request: { path: `/tasks/${UUID}%00` },
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "GET /tasks/<uuid too long>",
    request: { path: `/tasks/${UUID}0` },
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "GET /tasks/<unknown uuid>",
    request: { path: `/tasks/${UUID}` },
    expect: "404 not_found",
  },
  {
    level: "request",
    name: "GET /tasks/<bad uuid>/events",
    request: { path: "/tasks/zzz/events" },
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "POST /tasks/<bad uuid>/retry",
    request: { method: "POST", path: "/tasks/123/retry" },
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "POST /tasks/<unknown uuid>/cancel",
    request: { method: "POST", path: `/tasks/${UUID}/cancel` },
    expect: "404 not_found",
  },
  {
    level: "request",
    name: "GET /events/stream?taskId=bad",
    request: { path: "/events/stream?taskId=bad" },
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "unknown route",
    request: { path: "/nothing-here" },
    expect: "404 not_found",
  },
  // ---- request level: headers ----
  {
    level: "request",
    name: "no Authorization",
    request: { ...task(OK_URL), auth: "none" },
    expect: "401 unauthorized",
  },
  {
    level: "request",
    name: "Bearer garbage",
    request: post({ imageUrl: OK_URL }, {
      auth: "none",
      headers: { "content-type": "application/json", authorization: "Bearer not.a.jwt" },
    }),
    expect: "401 unauthorized",
  },
  {
    level: "request",
    name: "Basic auth",
    request: post({ imageUrl: OK_URL }, {
      auth: "none",
      headers: { "content-type": "application/json", authorization: "Basic dXNlcjpwYXNz" },
    }),
    expect: "401 unauthorized",
  },
  {
    level: "request",
    name: "JWT signed with alg none",
    request: post({ imageUrl: OK_URL }, {
      auth: "none",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${btoa(json({ alg: "none" }))}.${
          btoa(json({ role: "service_role" }))
        }.`,
      },
    }),
    expect: "401 unauthorized",
  },
  {
    level: "request",
    name: "Idempotency-Key of 300 characters",
    request: post({ imageUrl: OK_URL }, {
      headers: { "content-type": "application/json", "idempotency-key": "k".repeat(300) },
    }),
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "Idempotency-Key with the anon key",
    request: post({ imageUrl: OK_URL }, {
      auth: "anon",
      headers: { "content-type": "application/json", "idempotency-key": "k1" },
    }),
    expect: "400 idempotency_key_requires_user",
  },
  {
    level: "request",
    name: "Idempotency-Key reused with another body",
    before: () => [
      post({ imageUrl: OK_URL }, {
        headers: { "content-type": "application/json", "idempotency-key": "reuse-1" },
      }),
    ],
    request: post({ imageUrl: `${OK_URL}?2` }, {
      headers: { "content-type": "application/json", "idempotency-key": "reuse-1" },
    }),
    expect: "422 idempotency_key_reused",
  },
  {
    level: "request",
    name: "Last-Event-ID not a number",
    request: { path: "/events/stream", headers: { "last-event-id": "abc" } },
    expect: "400 invalid_request",
  },
  {
    level: "request",
    name: "GET /images with a control character tag",
    request: { path: "/images?tag=%01" },
    expect: "400 invalid_request",
  },
  // ---- request level: accepted, then the URL fails in the download ----
  {
    level: "request",
    name: "imageUrl with userinfo",
    imageUrl: "http://user:pass@example.com/a.jpg",
    expect: "failed invalid_url",
  },
  {
    // WHATWG URL parsing reads the path's first segment as the host: https://a.jpg/
    level: "request",
    name: "imageUrl https:///a.jpg (empty authority)",
    imageUrl: "https:///a.jpg",
    expect: "failed dns_error",
  },
  {
    level: "request",
    name: "IDN host (no such domain)",
    imageUrl: "http://bücher.invalid/a.jpg",
    expect: "failed dns_error",
  },
  {
    level: "request",
    name: "punycode host (no such domain)",
    imageUrl: "http://xn--bcher-kva.invalid/a.jpg",
    expect: "failed dns_error",
  },
  // ---- network level: addresses, blocked by default ----
  ...[
    ["loopback", "http://127.0.0.1/a.jpg"],
    ["loopback 127.1", "http://127.1/a.jpg"],
    ["loopback decimal", "http://2130706433/a.jpg"],
    ["loopback octal", "http://0177.0.0.1/a.jpg"],
    ["loopback hex", "http://0x7f.0.0.1/a.jpg"],
    ["private 10/8", "http://10.0.0.1/a.jpg"],
    ["private 172.16/12", "http://172.16.0.1/a.jpg"],
    ["private 192.168/16", "http://192.168.1.1/a.jpg"],
    ["link-local", "http://169.254.1.1/a.jpg"],
    ["CGNAT", "http://100.64.0.1/a.jpg"],
    ["unspecified 0.0.0.0", "http://0.0.0.0/a.jpg"],
    ["metadata", "http://169.254.169.254/latest/meta-data/"],
    ["metadata decimal", "http://2852039166/"],
    ["metadata octal", "http://0251.0376.0251.0376/"],
    ["metadata hex", "http://0xa9fea9fe/"],
    ["metadata ECS", "http://169.254.170.2/v2/credentials"],
    ["IPv6 loopback", "http://[::1]/a.jpg"],
    ["IPv6 link-local", "http://[fe80::1]/a.jpg"],
    ["IPv6 unique local", "http://[fd00::1]/a.jpg"],
    ["IPv4-mapped loopback", "http://[::ffff:127.0.0.1]/a.jpg"],
    ["IPv4-mapped metadata", "http://[::ffff:a9fe:a9fe]/"],
    ["NAT64 metadata", "http://[64:ff9b::a9fe:a9fe]/"],
    ["NAT64 loopback", "http://[64:ff9b::7f00:1]/a.jpg"],
    ["localhost", "http://localhost/a.jpg"],
    ["localhost.", "http://localhost./a.jpg"],
    ["*.localhost", "http://img.localhost/a.jpg"],
    ["DNS name resolving to loopback (/etc/hosts vm)", "http://vm/a.jpg"],
    ["metadata.google.internal", "http://metadata.google.internal/"],
  ].map(([name, imageUrl]): Case => ({
    level: "network",
    name,
    imageUrl,
    expect: "failed blocked_address",
  })),
  // ---- network level: hostile remote ends (private network allowed, metadata never) ----
  ...[
    ["redirect to metadata", "169.254.169.254/latest/meta-data/"],
    ["redirect to IPv4-mapped metadata", "[::ffff:169.254.169.254]/"],
    ["redirect to 0.0.0.0", "0.0.0.0/a.jpg"],
  ].map(([name, target]): Case => ({
    level: "network",
    name,
    platform: "open",
    imageUrl: (c) => `${c.fixtures}/redirect?to=${encodeURIComponent(`http://${target}`)}`,
    expect: "failed blocked_address",
  })),
  {
    level: "network",
    name: "redirect to file:",
    platform: "open",
    imageUrl: (c) => `${c.fixtures}/redirect?to=file:///etc/passwd`,
    expect: "failed invalid_url",
  },
  {
    level: "network",
    name: "redirect to userinfo",
    platform: "open",
    imageUrl: (c) => `${c.fixtures}/redirect?to=${encodeURIComponent("http://u:p@127.0.0.1/")}`,
    expect: "failed invalid_url",
  },
  {
    level: "network",
    name: "redirect loop",
    platform: "open",
    imageUrl: (c) => `${c.loop}/loop`,
    expect: "failed http_status",
  },
  {
    level: "network",
    name: "slow drip",
    platform: "open",
    imageUrl: (c) => `${c.content}/drip`,
    expect: "failed timeout",
  },
  {
    level: "network",
    name: "headers then silence",
    platform: "open",
    imageUrl: (c) => `${c.fixtures}/slow`,
    expect: "failed timeout",
  },
  {
    level: "network",
    name: "endless body",
    platform: "open",
    imageUrl: (c) => `${c.content}/endless`,
    expect: "failed too_large",
  },
  {
    level: "network",
    name: "Content-Length over the cap",
    platform: "open",
    imageUrl: (c) => `${c.content}/huge-length`,
    expect: "failed too_large",
  },
  {
    level: "network",
    name: "Content-Length longer than the body",
    platform: "open",
    imageUrl: (c) => c.lyingLong,
    expect: "failed connection_error",
  },
  {
    level: "network",
    name: "Content-Length shorter than the body",
    platform: "open",
    // The first 10 bytes are read: a JPEG's start, with no frame header.
    imageUrl: (c) => c.lyingShort,
    expect: "failed corrupt_image",
  },
  {
    level: "network",
    name: "TLS to a plain-HTTP port",
    platform: "open",
    imageUrl: (c) => `https://127.0.0.1:${c.plainPort}/a.jpg`,
    expect: "failed connection_error",
  },
  {
    level: "network",
    name: "connection refused",
    platform: "open",
    imageUrl: "http://127.0.0.1:9/a.jpg",
    expect: "failed connection_error",
  },
  {
    level: "network",
    name: "status 404",
    platform: "open",
    imageUrl: (c) => `${c.fixtures}/status/404`,
    expect: "failed http_status",
  },
  {
    level: "network",
    name: "status 503 (retries spent)",
    platform: "open",
    imageUrl: (c) => `${c.fixtures}/status/503`,
    expect: "failed http_status",
  },
  {
    level: "network",
    name: "HTML served as image/jpeg",
    platform: "open",
    imageUrl: (c) => `${c.fixtures}/html`,
    expect: "failed not_an_image",
  },
  // ---- content level ----
  // Truncations: cut so that no header is left, the file fails; cut after a readable header,
  // the pipeline keeps what it could read (dimensions, the EXIF there is, a caption from the
  // header and the pixels decoded), marking the metadata partial where the EXIF block was cut.
  ...([
    ["nikon_d70.jpg", "failed corrupt_image", "failed corrupt_image"],
    ["plain.png", "completed", "completed"],
    ["sample.gif", "completed", "completed"],
    ["bush_dog.tif", "failed not_an_image", "completed, partial"],
    ["irvine.avif", "failed corrupt_image", "completed, partial"],
  ] as const).flatMap(([file, cut32, half]): Case[] => [
    {
      level: "content",
      name: `${file} cut to 32 bytes`,
      platform: "open",
      imageUrl: (c) => `${c.content}/c/cut32/${file}`,
      expect: cut32,
    },
    {
      level: "content",
      name: `${file} cut in half`,
      platform: "open",
      imageUrl: (c) => `${c.content}/c/half/${file}`,
      expect: half,
    },
  ]),
  {
    level: "content",
    name: "BMP cut in half",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/half-bmp`,
    expect: "completed",
  },
  {
    level: "content",
    name: "WebP header only",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/webp-header`,
    expect: "failed corrupt_image",
  },
  {
    level: "content",
    name: "random bytes",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/random`,
    expect: "failed not_an_image",
  },
  {
    level: "content",
    name: "zero bytes (empty body)",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/empty`,
    expect: "failed not_an_image",
  },
  {
    level: "content",
    name: "4096 zero bytes",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/zeros`,
    expect: "failed not_an_image",
  },
  {
    level: "content",
    name: "SVG with a script",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/svg`,
    expect: "failed not_an_image",
  },
  {
    level: "content",
    name: "pixel bomb: PNG of 100000 x 100000",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/pixel-bomb`,
    expect: "failed too_large",
  },
  {
    level: "content",
    name: "PNG iCCP inflating to 2 GiB",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/iccp-bomb`,
    expect: "failed too_large",
  },
  {
    level: "content",
    name: "GIF frame of 65535 x 65535 on a 1x1 canvas",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/gif-frame-bomb`,
    expect: "failed corrupt_image",
  },
  {
    level: "content",
    name: "GIF of a million frames",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/gif-million`,
    expect: "failed too_large",
  },
  {
    level: "content",
    name: "JPEG of 100000 progressive scans",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/scan-bomb`,
    expect: "failed too_large",
  },
  {
    level: "content",
    name: "AVIF with a zero-size box",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/heif-zero-box`,
    expect: "failed corrupt_image",
  },
  {
    level: "content",
    name: "TIFF of 4000 entries sharing 4 MiB",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/tiff-value-bomb`,
    expect: "failed too_large",
  },
  {
    level: "content",
    name: "EXIF IFD0 offset outside the file",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/exif-ifd-outside`,
    expect: "completed, partial",
  },
  {
    level: "content",
    name: "EXIF entries pointing outside the file",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/exif-entries-outside`,
    expect: "completed, partial",
  },
  {
    level: "content",
    name: "EXIF IFD pointing into itself",
    platform: "open",
    imageUrl: (c) => `${c.content}/c/exif-self`,
    expect: "completed",
  },
];

// CATALOGUE_ONLY=<text> runs only the cases whose name contains it (to look at one closely).
const ONLY = Deno.env.get("CATALOGUE_ONLY");
const SELECTED = ONLY ? CASES.filter((c) => c.name.includes(ONLY)) : CASES;

/** Serves the content cases' bytes and the misbehaving endpoints. */
async function contentServer() {
  const bytes = new Map<string, Uint8Array>();
  for (const file of ["nikon_d70.jpg", "plain.png", "sample.gif", "bush_dog.tif", "irvine.avif"]) {
    const b = await fixtureBytes(file);
    bytes.set(`cut32/${file}`, b.slice(0, 32));
    bytes.set(`half/${file}`, b.slice(0, b.length >> 1));
  }
  const bmp = tinyBmp();
  bytes.set("half-bmp", bmp.slice(0, bmp.length >> 1));
  bytes.set(
    "webp-header",
    new Uint8Array([
      ...new TextEncoder().encode("RIFF"),
      30,
      0,
      0,
      0,
      ...new TextEncoder().encode("WEBPVP8 "),
      18,
      0,
      0,
      0,
    ]),
  );
  // Seeded noise: the same bytes every run.
  let seed = 42;
  bytes.set(
    "random",
    Uint8Array.from({ length: 8192 }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24),
  );
  bytes.set("empty", new Uint8Array(0));
  bytes.set("zeros", new Uint8Array(4096));
  bytes.set(
    "svg",
    new TextEncoder().encode(
      `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`,
    ),
  );
  bytes.set("pixel-bomb", pngDeclaring(100_000, 100_000));
  bytes.set("iccp-bomb", pngIccpBomb());
  bytes.set("gif-frame-bomb", gifFrameBomb());
  bytes.set("gif-million", gifOfFrames(1_000_000));
  bytes.set("scan-bomb", jpegScanBomb());
  bytes.set("heif-zero-box", heifZeroSizeBox());
  bytes.set("tiff-value-bomb", tiffValueBomb());
  const jpeg = await fixtureBytes("nikon_d70.jpg");
  bytes.set("exif-ifd-outside", jpegWithExif(jpeg, tiffIfdOutside()));
  bytes.set("exif-entries-outside", jpegWithExif(jpeg, tiffEntriesOutside()));
  bytes.set("exif-self", jpegWithExif(jpeg, tiffSelfReferencing()));

  const timers = new Set<ReturnType<typeof setTimeout>>();
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
    const url = new URL(req.url);
    const name = url.pathname.replace(/^\/c\//, "");
    if (url.pathname.startsWith("/c/") && bytes.has(name)) {
      return new Response(bytes.get(name) as Uint8Array<ArrayBuffer>, {
        headers: { "content-type": "image/jpeg" },
      });
    }
    if (url.pathname === "/loop") {
      return new Response(null, { status: 302, headers: { location: "/loop" } });
    }
    if (url.pathname === "/drip") {
      // One byte a second, forever: every read makes progress, the whole never arrives.
      let t: ReturnType<typeof setTimeout>;
      return new Response(
        new ReadableStream({
          pull: (c) =>
            new Promise<void>((resolve) => {
              t = setTimeout(() => {
                timers.delete(t);
                c.enqueue(new Uint8Array([0xff]));
                resolve();
              }, 1_000);
              timers.add(t);
            }),
          cancel: () => clearTimeout(t),
        }),
      );
    }
    if (url.pathname === "/endless") {
      const chunk = new Uint8Array(1024 * 1024);
      return new Response(new ReadableStream({ pull: (c) => c.enqueue(chunk) }));
    }
    if (url.pathname === "/huge-length") {
      return new Response(
        new ReadableStream({ start: (c) => c.enqueue(new Uint8Array([0xff, 0xd8])) }),
        { headers: { "content-length": String(10 ** 12) } },
      );
    }
    return new Response("not found", { status: 404 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    port: server.addr.port,
    async close() {
      for (const t of timers) clearTimeout(t);
      await server.shutdown();
    },
  };
}

Deno.test({
  name: "hostile-input catalogue: every case gets its expected 4xx or task outcome",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = {
      MAX_ATTEMPTS: "1",
      RATE_LIMIT_PER_MINUTE: "100000",
      RATE_LIMIT_BURST: "100000",
      // Long enough that only the cases meant to time out do, on a busy machine.
      DOWNLOAD_TIMEOUT_MS: "15000",
      // Over the million-frame GIF (15 MB), under what an endless body sends in that time.
      MAX_IMAGE_BYTES: String(16 * 1024 * 1024),
      COMPUTE_WORKERS: "2",
    };
    const strict = await startTestPlatform({ ...env, ALLOW_PRIVATE_NETWORK: "false" });
    const open = await startTestPlatform({ ...env, ALLOW_PRIVATE_NETWORK: "true" });
    const fixtures = startFixtureServer();
    const content = await contentServer();
    const jpeg = await fixtureBytes("nikon_d70.jpg");
    const lyingLong = rawHttpServer(() => ({
      head: "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: 100000\r\n\r\n",
      body: jpeg.slice(0, 1000),
    }));
    const lyingShort = rawHttpServer(() => ({
      head: "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: 10\r\n\r\n",
      body: jpeg,
    }));
    const hops: number[] = [];
    const loop = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, () => {
      hops.push(Date.now());
      return new Response(null, { status: 302, headers: { location: "/loop" } });
    });
    const ctx: Ctx = {
      loop: `http://127.0.0.1:${loop.addr.port}`,
      content: content.url,
      fixtures: fixtures.url,
      lyingLong: `${lyingLong.url}/a.jpg`,
      lyingShort: `${lyingShort.url}/a.jpg`,
      plainPort: content.port,
    };
    try {
      const tokens = new Map<TestPlatform, string>();
      for (const p of [strict, open]) tokens.set(p, await p.userToken());
      const send = async (p: TestPlatform, r: RawRequest) => {
        const headers: Record<string, string> = { ...r.headers };
        const auth = r.auth ?? "user";
        if (auth === "user") headers.authorization = `Bearer ${tokens.get(p)}`;
        if (auth === "anon") headers.authorization = `Bearer ${p.platform.anonKey}`;
        const res = await fetch(`${p.api}${r.path}`, {
          method: r.method ?? "GET",
          headers,
          body: r.body as BodyInit | undefined,
        });
        const text = await res.text();
        return { status: res.status, text };
      };
      /** The outcome as the table spells it, checking the shape of an error on the way. */
      const details = new Map<Case, string>();
      const outcome = async (c: Case): Promise<string> => {
        const p = c.platform === "open" ? open : strict;
        for (const r of c.before?.(ctx) ?? []) await send(p, r);
        const request = c.request
          ? (typeof c.request === "function" ? c.request(ctx) : c.request)
          : task(typeof c.imageUrl === "function" ? c.imageUrl(ctx) : c.imageUrl!);
        const res = await send(p, request);
        assert.doesNotMatch(res.text, /\bat .*\.(ts|js):\d+|file:\/\//, `${c.name}: stack trace`);
        if (res.status !== 202) {
          const body = JSON.parse(res.text);
          assert.deepEqual(Object.keys(body), ["error"], `${c.name}: ${res.text}`);
          assert.equal(typeof body.error.message, "string", `${c.name}: ${res.text}`);
          return `${res.status} ${body.error.code}`;
        }
        const { taskId } = JSON.parse(res.text);
        const deadline = Date.now() + 60_000;
        while (true) {
          const got = JSON.parse((await send(p, { path: `/tasks/${taskId}` })).text);
          if (got.status === "failed") {
            details.set(c, got.error.message);
            assert.equal(typeof got.error.message, "string", `${c.name}: ${json(got.error)}`);
            return `failed ${got.error.code}`;
          }
          if (got.status === "completed") {
            details.set(c, json(got.image?.metadata?.partial) + " " + got.image?.analysis?.caption);
            return got.image?.metadata?.partial ? "completed, partial" : "completed";
          }
          if (Date.now() > deadline) return `hung (${got.status} at ${got.stage})`;
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      // The strict platform's cases run at once; the open platform's three at a time, so that
      // the bombs' work cannot make another case time out (each case is judged on its own).
      const results = await Promise.all(
        SELECTED.filter((c) => c.platform !== "open").map(async (c) => ({
          c,
          got: await outcome(c),
        })),
      );
      const took: [string, number][] = [];
      const queue = SELECTED.filter((c) => c.platform === "open");
      await Promise.all([1, 2, 3].map(async () => {
        for (let c = queue.shift(); c; c = queue.shift()) {
          const t0 = performance.now();
          results.push({ c, got: await outcome(c) });
          took.push([c.name, Math.round(performance.now() - t0)]);
        }
      }));
      const byOutcome = new Map<string, number>();
      for (const { got } of results) byOutcome.set(got, (byOutcome.get(got) ?? 0) + 1);
      const byLevel = new Map<string, number>();
      for (const { c } of results) byLevel.set(c.level, (byLevel.get(c.level) ?? 0) + 1);
      console.log(
        `${SELECTED.length} cases (${[...byLevel].map(([l, n]) => `${l} ${n}`).join(", ")})`,
      );
      for (const [o, n] of [...byOutcome].sort((a, b) => b[1] - a[1])) {
        console.log(`  ${String(n).padStart(3)}  ${o}`);
      }
      console.log(
        `slowest: ${
          took.sort((a, b) => b[1] - a[1]).slice(0, 6).map(([n, ms]) => `${n} ${ms} ms`).join(", ")
        }`,
      );
      const wrong = results.filter(({ c, got }) => got !== c.expect);
      assert.deepEqual(
        wrong.map(({ c, got }) =>
          `${c.level}: ${c.name}: got ${got} (${details.get(c)})` +
          (c.name === "redirect loop" ? ` hops at ${hops.map((h) => h - hops[0])} ms` : "")
        ),
        [],
        "cases with another outcome than expected",
      );
      assert.ok(CASES.length >= 60);
      // Neither platform was harmed: both still answer and complete a real image.
      for (const p of [strict, open]) {
        const health = await send(p, { path: "/health", auth: "none" });
        assert.equal(health.status, 200, health.text);
      }
      const control = await outcome({
        level: "content",
        name: "a real image after all that",
        platform: "open",
        imageUrl: `${fixtures.url}/images/nikon_d70.jpg`,
        expect: "completed",
      });
      assert.equal(control, "completed");
    } finally {
      lyingLong.close();
      lyingShort.close();
      await loop.shutdown();
      await content.close();
      await fixtures.close();
      await strict.close();
      await open.close();
    }
  },
});
