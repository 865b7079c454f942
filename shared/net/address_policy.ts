/**
 * @module address_policy — which URLs a download may reach (the SSRF guard): http(s) only, no
 * credentials, and no host that is or resolves to a private, loopback, link-local, unique-local,
 * multicast, reserved or cloud metadata address. Range checks are ipaddr.js's, not ours.
 */
import ipaddr from "ipaddr.js";
import { lookup } from "node:dns/promises";
import { StageError } from "../errors.ts";

/** What the policy lets through. */
export interface AddressPolicyOptions {
  /**
   * Allow private (RFC 1918, CGNAT), loopback, link-local and unique-local targets, and
   * `localhost`: for local fixtures only. Cloud metadata addresses stay blocked regardless.
   */
  allowPrivateNetwork: boolean;
}

/** Resolves a hostname to IP address strings (tests inject one; default {@linkcode systemResolver}). */
export type Resolver = (host: string) => Promise<string[]>;

/** Ranges `allowPrivateNetwork` opens; every range but `unicast` is blocked otherwise. */
const PRIVATE_RANGES = new Set([
  "private",
  "carrierGradeNat",
  "loopback",
  "linkLocal",
  "uniqueLocal",
]);

/** How a blocked range reads in an error message. */
const RANGE_LABELS: Record<string, string> = {
  private: "private",
  carrierGradeNat: "private (CGNAT)",
  loopback: "loopback",
  linkLocal: "link-local",
  uniqueLocal: "unique-local",
  unspecified: "unspecified",
  multicast: "multicast",
  broadcast: "broadcast",
};

const key = (addr: ipaddr.IPv4 | ipaddr.IPv6) => addr.toByteArray().join(".");

/** Instance metadata endpoints: they hand out cloud credentials, so they are never reachable. */
const METADATA_ADDRESSES = new Set(
  [
    "169.254.169.254", // AWS, GCP, Azure, OCI, DigitalOcean, ...
    "169.254.170.2", // AWS ECS task metadata
    "100.100.100.200", // Alibaba Cloud
    "fd00:ec2::254", // AWS IMDS over IPv6
  ].map((a) => key(ipaddr.parse(a))),
);
const METADATA_HOSTNAMES = new Set(["metadata.google.internal", "metadata.goog", "metadata"]);

/** NAT64 well-known prefix: the last 32 bits are an IPv4 address, judged as such. */
const NAT64 = ipaddr.parseCIDR("64:ff9b::/96");
const IPV4_COMPATIBLE = ipaddr.parseCIDR("::/96");

/**
 * Returns why `ip` must not be fetched ("loopback", "cloud metadata", ...), or null when it
 * may be. IPv4-mapped IPv6 (`::ffff:127.0.0.1`) is judged as the IPv4 address it carries.
 *
 * @example
 * blockedAddressReason("10.1.2.3", { allowPrivateNetwork: false }); // "private"
 */
export function blockedAddressReason(ip: string, opts: AddressPolicyOptions): string | null {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(ip);
  } catch {
    return "unparsable";
  }
  if (METADATA_ADDRESSES.has(key(addr))) return "cloud metadata";
  const range = addr.range();
  if (range === "unicast") {
    // ipaddr.js calls ::/96 (deprecated IPv4-compatible, ::7f00:1) unicast; nothing legit uses it.
    return addr instanceof ipaddr.IPv6 && addr.match(IPV4_COMPATIBLE) ? "reserved" : null;
  }
  if (addr instanceof ipaddr.IPv6 && addr.match(NAT64)) {
    const embedded = ipaddr.fromByteArray(addr.toByteArray().slice(12));
    return blockedAddressReason(embedded.toString(), opts);
  }
  if (opts.allowPrivateNetwork && PRIVATE_RANGES.has(range)) return null;
  return RANGE_LABELS[range] ?? "reserved";
}

/** Lowercases a URL hostname, drops IPv6 brackets and trailing dots (`localhost.`). */
export function normalizeHostname(hostname: string): string {
  return hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.+$/, "");
}

/**
 * Returns why `hostname` must not be fetched before any DNS lookup (an IP literal in a blocked
 * range, `localhost`, `*.localhost`, a metadata name), or null.
 */
export function blockedHostnameReason(hostname: string, opts: AddressPolicyOptions): string | null {
  const host = normalizeHostname(hostname);
  if (METADATA_HOSTNAMES.has(host)) return "cloud metadata";
  if (ipaddr.isValid(host)) return blockedAddressReason(host, opts);
  if (host === "localhost" || host.endsWith(".localhost")) {
    return opts.allowPrivateNetwork ? null : "loopback";
  }
  return null;
}

const invalid = (message: string) => new StageError("invalid_url", message, false);

/** The labels ALLOW_PRIVATE_NETWORK opens (never cloud metadata or reserved ranges). */
const OPENABLE_LABELS = new Set(
  [...PRIVATE_RANGES].map((range) => RANGE_LABELS[range]).filter(Boolean),
);

/**
 * Names the setting that would allow a blocked address, when one would: someone testing with
 * images on their own machine learns why it failed and what to change.
 */
function openableHint(reason: string): string {
  return OPENABLE_LABELS.has(reason)
    ? "; set ALLOW_PRIVATE_NETWORK=true to fetch from private addresses (local testing only)"
    : "";
}

/**
 * Parses a download URL: http or https, a host, no credentials; drops the fragment. WHATWG
 * parsing already turns numeric hosts (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) into
 * dotted quads. Throws a `StageError` `invalid_url`.
 */
export function parseDownloadUrl(input: string | URL): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw invalid("Cannot download image: not a valid URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw invalid(`Cannot download image: unsupported scheme ${url.protocol.slice(0, -1)}`);
  }
  if (url.username || url.password) {
    throw invalid("Cannot download image: credentials in the URL are not allowed");
  }
  if (!normalizeHostname(url.hostname)) throw invalid("Cannot download image: the URL has no host");
  url.hash = "";
  return url;
}

const isNotFound = (err: unknown) =>
  err instanceof Deno.errors.NotFound ||
  ["ENOTFOUND", "ENODATA"].includes((err as { code?: string })?.code ?? "");

/** Deno's own DNS client: no /etc/hosts, so only a fallback for runtimes without getaddrinfo. */
async function resolveWithDeno(host: string): Promise<string[]> {
  const results = await Promise.allSettled([
    Deno.resolveDns(host, "A"),
    Deno.resolveDns(host, "AAAA"),
  ]);
  const found = results.flatMap((r) => r.status === "fulfilled" ? r.value : []);
  if (found.length > 0) return found;
  throw (results[0] as PromiseRejectedResult).reason;
}

/**
 * Resolves with the system resolver (`node:dns` lookup: getaddrinfo, honours /etc/hosts),
 * falling back to `Deno.resolveDns` where lookup is unavailable.
 */
export const systemResolver: Resolver = async (host) => {
  try {
    const found = await lookup(host, { all: true, verbatim: true });
    return found.map((a) => a.address);
  } catch (err) {
    if (isNotFound(err)) throw err;
    return await resolveWithDeno(host);
  }
};

/** Settles with `promise`, or rejects with the signal's reason as soon as it aborts. */
function raceAbort<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Options of {@linkcode assertUrlAllowed}. */
export interface AssertUrlOptions extends AddressPolicyOptions {
  /** Resolver to use; default {@linkcode systemResolver}. */
  resolve?: Resolver;
  /** Aborts a slow lookup. */
  signal?: AbortSignal;
}

/**
 * Checks `url`'s host and EVERY address it resolves to; returns the addresses. Throws a
 * `StageError`: `blocked_address`, or `dns_error` when the name does not resolve.
 *
 * DNS rebinding window: `fetch` resolves the name again when it connects, and a hostile DNS
 * server with a zero TTL can answer differently the second time. `fetch` (here and on Supabase
 * Edge) cannot be pinned to the address checked, so the window stays open; it is narrowed by
 * re-checking every redirect hop, and the metadata endpoints are also refused by name. Where
 * this matters, run downloads behind an egress proxy that enforces the same policy.
 */
export async function assertUrlAllowed(url: URL, opts: AssertUrlOptions): Promise<string[]> {
  const host = normalizeHostname(url.hostname);
  const byName = blockedHostnameReason(host, opts);
  if (byName) {
    throw new StageError(
      "blocked_address",
      `Cannot download image: ${host} is a blocked address (${byName})${openableHint(byName)}`,
    );
  }
  if (ipaddr.isValid(host)) return [host];
  let addresses: string[];
  try {
    addresses = await raceAbort((opts.resolve ?? systemResolver)(host), opts.signal);
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    if (isNotFound(err)) {
      throw new StageError("dns_error", `Cannot download image: host ${host} not found`, false, {
        cause: err,
      });
    }
    throw new StageError(
      "dns_error",
      `Cannot download image: DNS lookup for ${host} failed`,
      true,
      {
        cause: err,
      },
    );
  }
  if (addresses.length === 0) {
    throw new StageError("dns_error", `Cannot download image: host ${host} not found`, false);
  }
  for (const address of addresses) {
    const reason = blockedAddressReason(address, opts);
    if (reason) {
      throw new StageError(
        "blocked_address",
        `Cannot download image: ${host} resolves to a blocked address (${reason})${
          openableHint(reason)
        }`,
      );
    }
  }
  return addresses;
}
