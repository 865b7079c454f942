/**
 * @module safe_fetch — downloads an image URL under the address policy: every hop checked
 * (redirects followed by hand), one deadline for the whole download, a byte cap enforced while
 * streaming. Every failure is a `StageError` with a task error code.
 */
import { StageError } from "../errors.ts";
import { parseRetryAfter } from "./retry_after.ts";
import { assertUrlAllowed, parseDownloadUrl, type Resolver } from "./address_policy.ts";

/** Options of {@linkcode safeFetchImage}. */
export interface SafeFetchOptions {
  /** Largest body accepted, in bytes. */
  maxBytes: number;
  /** Budget for the whole download (DNS, connect, every redirect, body), in ms. */
  timeoutMs: number;
  /** Allow private, loopback and link-local targets (local fixtures only); metadata stays blocked. */
  allowPrivateNetwork: boolean;
  /** Redirects followed before giving up; default 5. */
  maxRedirects?: number;
  /** The fetch to use; default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Hostname resolver; default `systemResolver` (node:dns lookup). */
  resolve?: Resolver;
  /** The stage's time budget: when it aborts, the error is a retryable `timeout`. */
  signal?: AbortSignal;
  /** User-Agent header; default {@linkcode DEFAULT_USER_AGENT}. */
  userAgent?: string;
}

/** What a successful download returns. */
export interface SafeFetchResult {
  bytes: Uint8Array;
  /** The Content-Type header as declared by the server (not trusted: sniff the bytes). */
  contentType: string | null;
  /** The URL the bytes came from, after redirects. */
  finalUrl: string;
  /** Redirects followed. */
  redirects: number;
}

/** User-Agent sent when none is given. */
export const DEFAULT_USER_AGENT = "Darkroom/1.0 (image ingestion)";

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Marks a failure of the connection itself (refused, reset, TLS), as opposed to a bug. */
class NetworkFailure extends Error {
  override readonly name = "NetworkFailure";
}

/**
 * Downloads `url` as bytes. Throws a `StageError`: `invalid_url`, `blocked_address`,
 * `http_status` (non-2xx, too many redirects), `dns_error`, `connection_error` (refused,
 * reset, TLS), `timeout` (the deadline, or
 * `signal` aborted), `too_large`.
 *
 * @example
 * const { bytes, contentType } = await safeFetchImage("https://example.com/cat.jpg", {
 *   maxBytes: 20 * 1024 * 1024,
 *   timeoutMs: 15_000,
 *   allowPrivateNetwork: false,
 * });
 */
export async function safeFetchImage(
  url: string,
  opts: SafeFetchOptions,
): Promise<SafeFetchResult> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, deadline.signal]) : deadline.signal;
  try {
    return await download(url, opts, signal);
  } catch (err) {
    if (err instanceof StageError) throw err;
    // The caller's signal is the stage's time budget (a user's cancel never reaches a worker:
    // cancel_task changes the row and the stage's outcome is ignored), so `cancelled` would
    // misreport it: an abort is a retryable `timeout`.
    if (opts.signal?.aborted) {
      const message = "Cannot download image: the stage's time budget ran out";
      throw new StageError("timeout", message, true, { cause: err });
    }
    if (deadline.signal.aborted) {
      const message = `Cannot download image: timed out after ${opts.timeoutMs} ms`;
      throw new StageError("timeout", message, true, { cause: err });
    }
    // A connection that fails (refused, reset, TLS) is `connection_error`, not `internal`: the
    // remote end gave no answer and retrying may help; `internal` is kept for our own faults,
    // so a dead host on a user's URL never reads as a Darkroom bug.
    if (err instanceof NetworkFailure) {
      throw new StageError("connection_error", err.message, true, { cause: err.cause });
    }
    throw new StageError("internal", "Cannot download image: unexpected error", false, {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
  }
}

async function download(
  url: string,
  opts: SafeFetchOptions,
  signal: AbortSignal,
): Promise<SafeFetchResult> {
  const maxRedirects = opts.maxRedirects ?? 5;
  const fetchFn = opts.fetch ?? globalThis.fetch;
  const headers = {
    "user-agent": opts.userAgent ?? DEFAULT_USER_AGENT,
    accept: "image/*,*/*;q=0.8",
    // Images are compressed already; asking for identity keeps Content-Length meaningful.
    "accept-encoding": "identity",
  };
  let current = parseDownloadUrl(url);
  for (let redirects = 0;; redirects++) {
    // MUST run before every request, the first and each redirect hop.
    await assertUrlAllowed(current, { ...opts, signal });
    let res: Response;
    try {
      res = await fetchFn(current.href, { redirect: "manual", headers, signal });
    } catch (err) {
      throw new NetworkFailure("Cannot download image: connection failed", { cause: err });
    }
    const location = res.headers.get("location");
    if (REDIRECT_STATUSES.has(res.status) && location !== null) {
      await res.body?.cancel();
      if (redirects >= maxRedirects) {
        throw new StageError(
          "http_status",
          `Cannot download image: more than ${maxRedirects} redirects`,
        );
      }
      current = parseRedirect(location, current);
      continue;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw statusError(res);
    }
    const bytes = await readCapped(res, opts.maxBytes);
    return {
      bytes,
      contentType: res.headers.get("content-type"),
      finalUrl: current.href,
      redirects,
    };
  }
}

function parseRedirect(location: string, base: URL): URL {
  let next: URL;
  try {
    next = new URL(location, base);
  } catch {
    throw new StageError("invalid_url", "Cannot download image: redirect to an invalid URL");
  }
  return parseDownloadUrl(next);
}

/** 408, 425, 429 and 5xx may pass; other statuses will not. */
function statusError(res: Response): StageError {
  const status = res.status;
  const retryable = status === 408 || status === 425 || status === 429 || status >= 500;
  return new StageError("http_status", `Cannot download image: status ${status}`, retryable, {
    retryAfterSeconds: retryable ? parseRetryAfter(res.headers) : undefined,
  });
}

const tooLarge = (maxBytes: number) =>
  new StageError("too_large", `Cannot download image: over ${maxBytes} bytes`, false);

/**
 * Reads the body, at most `maxBytes`. A declared Content-Length over the cap is refused before
 * reading; the running count is enforced anyway, because the header can lie or be absent.
 */
async function readCapped(res: Response, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw tooLarge(maxBytes);
  }
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (err) {
      throw new NetworkFailure("Cannot download image: connection lost", { cause: err });
    }
    if (chunk.done) break;
    total += chunk.value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw tooLarge(maxBytes);
    }
    chunks.push(chunk.value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  return bytes;
}
