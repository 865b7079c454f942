/**
 * @module tests/unit/address_policy_test — the SSRF guard on URLs, hostnames and addresses, with
 * an injected resolver (no network).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  assertUrlAllowed,
  blockedAddressReason,
  blockedHostnameReason,
  parseDownloadUrl,
  type Resolver,
} from "../../shared/net/address_policy.ts";
import { StageError } from "../../shared/errors.ts";

const STRICT = { allowPrivateNetwork: false };
const LAX = { allowPrivateNetwork: true };
const noDns: Resolver = () => Promise.reject(new Error("no DNS in unit tests"));

/** Runs the whole URL check (parse, hostname, addresses) and returns the error code or "ok". */
async function verdict(
  url: string,
  opts = STRICT,
  resolve: Resolver = noDns,
): Promise<string> {
  try {
    await assertUrlAllowed(parseDownloadUrl(url), { ...opts, resolve });
    return "ok";
  } catch (err) {
    assert.ok(err instanceof StageError, `unexpected ${err}`);
    assert.equal(err.retryable, false);
    return err.code;
  }
}

const BLOCKED_URLS: [string, string][] = [
  ["http://127.0.0.1/", "loopback"],
  ["http://2130706433/", "loopback (decimal)"],
  ["http://0x7f.1/", "loopback (hex, short)"],
  ["http://0x7f000001/", "loopback (hex)"],
  ["http://0177.0.0.1/", "loopback (octal)"],
  ["http://127.1/", "loopback (short)"],
  ["http://127.255.255.254:8080/x", "loopback with port"],
  ["http://[::1]/", "IPv6 loopback"],
  ["http://[::ffff:127.0.0.1]/", "IPv4-mapped loopback"],
  ["http://[::ffff:7f00:1]/", "IPv4-mapped loopback, hex"],
  ["http://[64:ff9b::7f00:1]/", "NAT64 of loopback"],
  ["http://[::7f00:1]/", "IPv4-compatible loopback"],
  ["http://[::ffff:0:7f00:1]/", "IPv4-translated loopback"],
  ["http://10.0.0.1/", "RFC 1918 10/8"],
  ["http://172.16.5.4/", "RFC 1918 172.16/12"],
  ["http://172.31.255.255/", "RFC 1918 172.16/12 top"],
  ["http://192.168.1.1/", "RFC 1918 192.168/16"],
  ["http://[::ffff:10.0.0.1]/", "IPv4-mapped private"],
  ["http://100.64.0.1/", "CGNAT"],
  ["http://169.254.1.1/", "link-local"],
  ["http://169.254.169.254/latest/meta-data/", "metadata"],
  ["http://[::ffff:169.254.169.254]/", "IPv4-mapped metadata"],
  ["http://[fd00:ec2::254]/", "AWS IPv6 metadata"],
  ["http://metadata.google.internal/computeMetadata/v1/", "GCP metadata name"],
  ["http://METADATA.google.internal./", "GCP metadata name, dotted"],
  ["http://[fe80::1]/", "IPv6 link-local"],
  ["http://[fc00::1]/", "unique-local"],
  ["http://[fd12:3456::1]/", "unique-local fd"],
  ["http://0.0.0.0/", "unspecified"],
  ["http://0/", "unspecified (decimal)"],
  ["http://[::]/", "IPv6 unspecified"],
  ["http://224.0.0.1/", "multicast"],
  ["http://[ff02::1]/", "IPv6 multicast"],
  ["http://255.255.255.255/", "broadcast"],
  ["http://240.0.0.1/", "reserved"],
  ["http://192.0.2.10/", "TEST-NET-1"],
  ["http://[2001:db8::1]/", "IPv6 documentation"],
  ["http://[2002:7f00:1::]/", "6to4"],
  ["http://localhost/", "localhost"],
  ["http://LOCALHOST.:3000/", "localhost, dotted"],
  ["http://images.localhost/", "*.localhost"],
];

for (const [url, what] of BLOCKED_URLS) {
  Deno.test(`assertUrlAllowed() blocks ${what}: ${url}`, async () => {
    assert.equal(await verdict(url), "blocked_address");
  });
}

const PUBLIC_URLS = [
  "http://93.184.216.34/cat.jpg",
  "https://8.8.8.8/",
  "http://[2606:4700:4700::1111]/",
  "http://[64:ff9b::808:808]/",
  "http://172.32.0.1/",
  "http://100.128.0.1/",
];

for (const url of PUBLIC_URLS) {
  Deno.test(`assertUrlAllowed() lets a public address through: ${url}`, async () => {
    assert.equal(await verdict(url), "ok");
  });
}

const OPENED_BY_FLAG = [
  "http://127.0.0.1:8000/",
  "http://10.1.2.3/",
  "http://192.168.0.10/",
  "http://100.64.1.1/",
  "http://169.254.10.10/",
  "http://[::1]/",
  "http://[fe80::1]/",
  "http://[fd12::1]/",
  "http://[::ffff:127.0.0.1]/",
  "http://images.localhost/",
];

for (const url of OPENED_BY_FLAG) {
  Deno.test(`assertUrlAllowed() allows ${url} with allowPrivateNetwork`, async () => {
    const loopback: Resolver = () => Promise.resolve(["127.0.0.1"]);
    assert.equal(await verdict(url, LAX, loopback), "ok");
  });
}

const ALWAYS_BLOCKED = [
  "http://169.254.169.254/",
  "http://[::ffff:169.254.169.254]/",
  "http://169.254.170.2/",
  "http://100.100.100.200/",
  "http://[fd00:ec2::254]/",
  "http://metadata.google.internal/",
  "http://224.0.0.1/",
  "http://255.255.255.255/",
  "http://0.0.0.0/",
];

for (const url of ALWAYS_BLOCKED) {
  Deno.test(`assertUrlAllowed() blocks ${url} even with allowPrivateNetwork`, async () => {
    assert.equal(await verdict(url, LAX), "blocked_address");
  });
}

const INVALID_URLS = [
  "ftp://example.com/cat.jpg",
  "file:///etc/passwd",
  "javascript:alert(1)",
  "data:image/png;base64,iVBORw0KGgo=",
  "not a url",
  "",
  "http://",
  "http://user:secret@example.com/cat.jpg",
  "https://user@example.com/cat.jpg",
];

for (const url of INVALID_URLS) {
  Deno.test(`parseDownloadUrl() rejects ${JSON.stringify(url)} as invalid_url`, async () => {
    assert.equal(await verdict(url), "invalid_url");
  });
}

Deno.test("parseDownloadUrl() names the scheme and drops the fragment", () => {
  assert.throws(() => parseDownloadUrl("ftp://example.com/"), {
    message: "Cannot download image: unsupported scheme ftp",
  });
  assert.equal(parseDownloadUrl("https://example.com/a.jpg#x").href, "https://example.com/a.jpg");
});

Deno.test("assertUrlAllowed() checks every address a name resolves to", async () => {
  const resolve: Resolver = (host) =>
    Promise.resolve(host === "mixed.test" ? ["93.184.216.34", "10.0.0.7"] : ["93.184.216.34"]);
  assert.equal(await verdict("http://mixed.test/", STRICT, resolve), "blocked_address");
  assert.equal(await verdict("http://public.test/", STRICT, resolve), "ok");
  await assert.rejects(
    assertUrlAllowed(new URL("http://mixed.test/"), { ...STRICT, resolve }),
    {
      message:
        "Cannot download image: mixed.test resolves to a blocked address (private); set ALLOW_PRIVATE_NETWORK=true to fetch from private addresses (local testing only)",
    },
  );
});

Deno.test("assertUrlAllowed() names ALLOW_PRIVATE_NETWORK for loopback, never for metadata", async () => {
  const loopback = await assertUrlAllowed(new URL("http://127.0.0.1:8000/a.jpg"), STRICT)
    .catch((e) => e);
  assert.match(loopback.message, /\(loopback\); set ALLOW_PRIVATE_NETWORK=true/);
  const metadata = await assertUrlAllowed(new URL("http://169.254.169.254/"), LAX).catch((e) => e);
  assert.equal(metadata.code, "blocked_address");
  assert.doesNotMatch(metadata.message, /ALLOW_PRIVATE_NETWORK/);
});

Deno.test("assertUrlAllowed() blocks a name resolving to metadata even with the flag", async () => {
  const resolve: Resolver = () => Promise.resolve(["169.254.169.254"]);
  assert.equal(await verdict("http://rebind.test/", LAX, resolve), "blocked_address");
});

Deno.test("assertUrlAllowed() blocks a name resolving to IPv4-mapped loopback", async () => {
  const resolve: Resolver = () => Promise.resolve(["::ffff:127.0.0.1"]);
  assert.equal(await verdict("http://sneaky.test/", STRICT, resolve), "blocked_address");
});

Deno.test("assertUrlAllowed() reports an unknown host as dns_error, not retryable", async () => {
  const notFound = Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" });
  const err = await assertUrlAllowed(new URL("http://nowhere.test/"), {
    ...STRICT,
    resolve: () => Promise.reject(notFound),
  }).catch((e) => e);
  assert.ok(err instanceof StageError);
  assert.equal(err.code, "dns_error");
  assert.equal(err.retryable, false);
  assert.equal(err.message, "Cannot download image: host nowhere.test not found");
  const empty = await assertUrlAllowed(new URL("http://empty.test/"), {
    ...STRICT,
    resolve: () => Promise.resolve([]),
  }).catch((e) => e);
  assert.equal(empty.code, "dns_error");
});

Deno.test("assertUrlAllowed() retries a failing DNS lookup", async () => {
  const err = await assertUrlAllowed(new URL("http://flaky.test/"), {
    ...STRICT,
    resolve: () => Promise.reject(Object.assign(new Error("EAI_AGAIN"), { code: "EAI_AGAIN" })),
  }).catch((e) => e);
  assert.equal(err.code, "dns_error");
  assert.equal(err.retryable, true);
});

Deno.test("blockedAddressReason() names the range", () => {
  assert.equal(blockedAddressReason("127.0.0.1", STRICT), "loopback");
  assert.equal(blockedAddressReason("10.0.0.1", STRICT), "private");
  assert.equal(blockedAddressReason("100.64.0.1", STRICT), "private (CGNAT)");
  assert.equal(blockedAddressReason("169.254.169.254", LAX), "cloud metadata");
  assert.equal(blockedAddressReason("fe80::1", STRICT), "link-local");
  assert.equal(blockedAddressReason("not-an-ip", STRICT), "unparsable");
  assert.equal(blockedAddressReason("1.1.1.1", STRICT), null);
  assert.equal(blockedHostnameReason("example.com", STRICT), null);
  assert.equal(blockedHostnameReason("localhost", LAX), null);
});

const octet = fc.integer({ min: 0, max: 255 });
const privateV4 = fc.oneof(
  fc.tuple(fc.constant(10), octet, octet, octet),
  fc.tuple(fc.constant(127), octet, octet, octet),
  fc.tuple(fc.constant(169), fc.constant(254), octet, octet),
  fc.tuple(fc.constant(192), fc.constant(168), octet, octet),
  fc.tuple(fc.constant(172), fc.integer({ min: 16, max: 31 }), octet, octet),
);

Deno.test("blockedAddressReason() blocks every address of 10/8, 127/8, 169.254/16, 192.168/16, 172.16/12", () => {
  fc.assert(
    fc.property(privateV4, (parts) => {
      const ip = parts.join(".");
      assert.notEqual(blockedAddressReason(ip, STRICT), null, ip);
      assert.notEqual(blockedAddressReason(`::ffff:${ip}`, STRICT), null, `::ffff:${ip}`);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("assertUrlAllowed() blocks those addresses in decimal and IPv4-mapped URL forms", async () => {
  await fc.assert(
    fc.asyncProperty(privateV4, async ([a, b, c, d]) => {
      const decimal = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
      assert.equal(await verdict(`http://${decimal}/`), "blocked_address", String(decimal));
      assert.equal(await verdict(`http://[::ffff:${a}.${b}.${c}.${d}]/`), "blocked_address");
    }),
    { numRuns: 500 },
  );
});

Deno.test("blockedAddressReason() blocks all of ::ffff:127.0.0.0/104", () => {
  fc.assert(
    fc.property(octet, octet, octet, (b, c, d) => {
      assert.equal(blockedAddressReason(`::ffff:127.${b}.${c}.${d}`, STRICT), "loopback");
    }),
  );
});
