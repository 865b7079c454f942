/**
 * @module tests/integration/safe_fetch_test — safeFetchImage() against real HTTP servers on
 * loopback (Deno.serve, and a raw TCP server for responses Deno.serve will not send), plus
 * sniffing and hashing the shared fixture images.
 */
import assert from "node:assert/strict";
import { safeFetchImage, type SafeFetchOptions } from "../../shared/net/safe_fetch.ts";
import { sniffImageType } from "../../shared/net/sniff.ts";
import { sha256Hex } from "../../shared/net/hash.ts";
import { StageError } from "../../shared/errors.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url);
const ORACLE: { images: { file: string; sha256: string; byteSize: number; mimeType: string }[] } =
  JSON.parse(await Deno.readTextFile(new URL("oracle.json", FIXTURES)));
const JPEG = await Deno.readFile(new URL("images/nikon_d70.jpg", FIXTURES));

const LOCAL: SafeFetchOptions = {
  maxBytes: 1_000_000,
  timeoutMs: 5_000,
  allowPrivateNetwork: true,
};
const STRICT: SafeFetchOptions = { ...LOCAL, allowPrivateNetwork: false };

/**
 * A Deno.serve server on 127.0.0.1 that counts requests; dispose it with `await using`.
 * `stall` never settles until the server is disposed: a handler awaiting it hangs.
 */
function serve(
  handler: (req: Request, url: URL, stall: Promise<void>) => Response | Promise<Response>,
) {
  const release = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    s.hits++;
    return handler(req, new URL(req.url), release.promise);
  });
  const s = {
    hits: 0,
    base: `http://127.0.0.1:${server.addr.port}`,
    port: server.addr.port,
    async [Symbol.asyncDispose]() {
      release.resolve();
      await server.shutdown();
    },
  };
  return s;
}

/** A raw TCP server answering each connection with `respond`; for headers that lie. */
function rawServer(respond: (conn: Deno.Conn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const handled: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      handled.push((async () => {
        await conn.read(new Uint8Array(8192)).catch(() => null);
        await respond(conn).catch(() => {}); // the client hanging up mid-write is the point
        try {
          conn.close();
        } catch { /* already closed */ }
      })());
    }
  })();
  return {
    base: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting.catch(() => {});
      await Promise.all(handled);
    },
  };
}

async function failure(url: string, opts: SafeFetchOptions): Promise<StageError> {
  const err = await safeFetchImage(url, opts).then(
    () => assert.fail(`expected ${url} to fail`),
    (e) => e,
  );
  assert.ok(err instanceof StageError, `not a StageError: ${err}`);
  return err;
}

const encoder = new TextEncoder();

Deno.test("safeFetchImage() downloads every fixture intact, and sniffs each as the oracle says", async (t) => {
  await using server = serve(async (_req, url) => {
    const bytes = await Deno.readFile(new URL(`images/${url.pathname.slice(1)}`, FIXTURES));
    return new Response(bytes, { headers: { "content-type": "application/octet-stream" } });
  });
  for (const image of ORACLE.images) {
    await t.step(image.file, async () => {
      const got = await safeFetchImage(`${server.base}/${image.file}`, LOCAL);
      assert.equal(got.bytes.byteLength, image.byteSize);
      assert.equal(await sha256Hex(got.bytes), image.sha256);
      assert.equal((await sniffImageType(got.bytes))?.mime, image.mimeType);
      assert.equal(got.contentType, "application/octet-stream");
      assert.equal(got.finalUrl, `${server.base}/${image.file}`);
      assert.equal(got.redirects, 0);
    });
  }
});

Deno.test("sniffImageType() returns null for an HTML page served as image/jpeg", async () => {
  await using server = serve(() =>
    new Response("<!doctype html><html><body>not an image</body></html>", {
      headers: { "content-type": "image/jpeg" },
    })
  );
  const got = await safeFetchImage(`${server.base}/cat.jpg`, LOCAL);
  assert.equal(got.contentType, "image/jpeg");
  assert.equal(await sniffImageType(got.bytes), null);
  assert.equal(await sniffImageType(new Uint8Array(0)), null);
});

Deno.test("sha256Hex() matches the FIPS 180-2 test vector", async () => {
  assert.equal(
    await sha256Hex(encoder.encode("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("safeFetchImage() refuses loopback without allowPrivateNetwork, before connecting", async () => {
  await using server = serve(() => new Response(JPEG));
  for (const url of [`${server.base}/a.jpg`, `http://localhost:${server.port}/a.jpg`]) {
    const err = await failure(url, STRICT);
    assert.equal(err.code, "blocked_address");
    assert.equal(err.retryable, false);
  }
  assert.equal(server.hits, 0);
});

Deno.test("safeFetchImage() reaches localhost through the system resolver with allowPrivateNetwork", async () => {
  await using server = serve(() => new Response(JPEG));
  const got = await safeFetchImage(`http://localhost:${server.port}/a.jpg`, LOCAL);
  assert.deepEqual(got.bytes, JPEG);
});

Deno.test("safeFetchImage() blocks a redirect to 169.254.169.254 even with allowPrivateNetwork", async () => {
  await using server = serve(() =>
    Response.redirect("http://169.254.169.254/latest/meta-data/iam/security-credentials/", 302)
  );
  const err = await failure(`${server.base}/img.jpg`, LOCAL);
  assert.equal(err.code, "blocked_address");
  assert.match(err.message, /cloud metadata/);
  assert.equal(server.hits, 1);
});

Deno.test("safeFetchImage() re-resolves a redirect target's name and blocks metadata", async () => {
  await using server = serve(() => Response.redirect("http://innocent.test/img.jpg", 301));
  const err = await failure(`${server.base}/img.jpg`, {
    ...LOCAL,
    resolve: () => Promise.resolve(["169.254.169.254"]),
  });
  assert.equal(err.code, "blocked_address");
  assert.equal(
    err.message,
    "Cannot download image: innocent.test resolves to a blocked address (cloud metadata)",
  );
});

Deno.test("safeFetchImage() blocks a public host redirecting to loopback", async () => {
  await using server = serve(() => new Response(JPEG));
  const seen: string[] = [];
  const fakeFetch: typeof fetch = (input) => {
    seen.push(String(input));
    return Promise.resolve(
      new Response(null, { status: 307, headers: { location: `${server.base}/secret` } }),
    );
  };
  const err = await failure("http://93.184.216.34/cat.jpg", { ...STRICT, fetch: fakeFetch });
  assert.equal(err.code, "blocked_address");
  assert.deepEqual(seen, ["http://93.184.216.34/cat.jpg"]);
  assert.equal(server.hits, 0);
});

Deno.test("safeFetchImage() follows 5 redirects, relative ones too, and refuses a 6th", async () => {
  await using server = serve((_req, url) => {
    const n = Number(url.pathname.split("/")[2]);
    if (n > 0) return new Response(null, { status: 302, headers: { location: `../r/${n - 1}` } });
    return new Response(JPEG, { headers: { "content-type": "image/jpeg" } });
  });
  const ok = await safeFetchImage(`${server.base}/r/5`, LOCAL);
  assert.equal(ok.redirects, 5);
  assert.equal(ok.finalUrl, `${server.base}/r/0`);
  assert.deepEqual(ok.bytes, JPEG);

  const err = await failure(`${server.base}/r/6`, LOCAL);
  assert.equal(err.code, "http_status");
  assert.equal(err.message, "Cannot download image: more than 5 redirects");
  assert.equal(err.retryable, false);
  const one = await failure(`${server.base}/r/2`, { ...LOCAL, maxRedirects: 1 });
  assert.equal(one.message, "Cannot download image: more than 1 redirects");
});

Deno.test("safeFetchImage() rejects a redirect to a non-http scheme as invalid_url", async () => {
  await using server = serve(() =>
    new Response(null, { status: 302, headers: { location: "file:///etc/passwd" } })
  );
  const err = await failure(`${server.base}/x`, LOCAL);
  assert.equal(err.code, "invalid_url");
});

Deno.test("safeFetchImage() caps a body whose Content-Length lies (says 10, sends 1 MB)", async () => {
  await using server = rawServer(async (conn) => {
    const size = 1 << 20;
    await conn.write(encoder.encode(
      "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: 10\r\n" +
        `transfer-encoding: chunked\r\nconnection: close\r\n\r\n${size.toString(16)}\r\n`,
    ));
    await conn.write(new Uint8Array(size));
    await conn.write(encoder.encode("\r\n0\r\n\r\n"));
  });
  const err = await failure(`${server.base}/lie.jpg`, { ...LOCAL, maxBytes: 100_000 });
  assert.equal(err.code, "too_large");
  assert.equal(err.message, "Cannot download image: over 100000 bytes");
  assert.equal(err.retryable, false);
});

Deno.test("safeFetchImage() caps a chunked body with no Content-Length and cancels the stream", async () => {
  let sent = 0;
  let cancelled = false;
  await using server = serve(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.enqueue(new Uint8Array(64 * 1024));
          sent += 64 * 1024;
        },
        cancel() {
          cancelled = true;
        },
      }),
    )
  );
  const err = await failure(`${server.base}/endless`, { ...LOCAL, maxBytes: 200_000 });
  assert.equal(err.code, "too_large");
  await server[Symbol.asyncDispose]();
  assert.ok(cancelled, `the server's stream was not cancelled after ${sent} bytes`);
});

Deno.test("safeFetchImage() refuses a declared Content-Length over the cap without reading", async () => {
  await using server = rawServer(async (conn) => {
    await conn.write(encoder.encode(
      "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: 5000000\r\n\r\n",
    ));
    await new Promise((r) => setTimeout(r, 200)); // the body never comes in time
  });
  const started = performance.now();
  const err = await failure(`${server.base}/big.jpg`, { ...LOCAL, timeoutMs: 2_000 });
  assert.equal(err.code, "too_large");
  assert.ok(performance.now() - started < 1_000);
});

Deno.test("safeFetchImage() fails a 404 as http_status, not retryable", async () => {
  await using server = serve(() => new Response("nope", { status: 404 }));
  const err = await failure(`${server.base}/missing.jpg`, LOCAL);
  assert.equal(err.code, "http_status");
  assert.equal(err.message, "Cannot download image: status 404");
  assert.equal(err.retryable, false);
});

Deno.test("safeFetchImage() fails a 503 and a 429 as retryable, honouring Retry-After", async () => {
  await using server = serve((_req, url) =>
    new Response("busy", {
      status: Number(url.pathname.slice(1)),
      headers: { "retry-after": "7" },
    })
  );
  for (const status of [503, 429, 500, 408]) {
    const err = await failure(`${server.base}/${status}`, LOCAL);
    assert.equal(err.code, "http_status");
    assert.equal(err.message, `Cannot download image: status ${status}`);
    assert.equal(err.retryable, true);
    assert.equal(err.retryAfterSeconds, 7);
  }
  const forbidden = await failure(`${server.base}/403`, LOCAL);
  assert.equal(forbidden.retryable, false);
});

Deno.test("safeFetchImage() times out a server that never answers, within timeoutMs", async () => {
  await using server = serve(async (_req, _url, stall) => {
    await stall;
    return new Response(null);
  });
  const started = performance.now();
  const err = await failure(`${server.base}/stall`, { ...LOCAL, timeoutMs: 300 });
  const elapsed = performance.now() - started;
  assert.equal(err.code, "timeout");
  assert.equal(err.message, "Cannot download image: timed out after 300 ms");
  assert.equal(err.retryable, true);
  assert.ok(elapsed >= 290 && elapsed < 1_000, `took ${elapsed} ms`);
});

Deno.test("safeFetchImage() times out a body that stalls halfway", async () => {
  await using server = serve((_req, _url, stall) =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(JPEG.slice(0, 1000));
        },
        pull: () => stall,
      }),
    )
  );
  const started = performance.now();
  const err = await failure(`${server.base}/slow`, { ...LOCAL, timeoutMs: 300 });
  assert.equal(err.code, "timeout");
  assert.ok(performance.now() - started < 1_000);
});

Deno.test("safeFetchImage() reports a refused connection as retryable connection_error", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const err = await failure(`http://127.0.0.1:${port}/a.jpg`, LOCAL);
  assert.equal(err.code, "connection_error");
  assert.equal(err.message, "Cannot download image: connection failed");
  assert.equal(err.retryable, true);
});

Deno.test("safeFetchImage() reports an aborted signal (the stage's budget) as a retryable timeout, never cancelled", async () => {
  await using server = serve(async (_req, _url, stall) => {
    await stall;
    return new Response(null);
  });
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 50);
  const err = await failure(`${server.base}/stall`, { ...LOCAL, signal: controller.signal });
  clearTimeout(timer);
  assert.equal(err.code, "timeout");
  assert.equal(err.retryable, true);
});

Deno.test("safeFetchImage() rejects an invalid URL before any I/O", async () => {
  for (const url of ["ftp://127.0.0.1/a.jpg", "http://user:pw@127.0.0.1/", "nope"]) {
    assert.equal((await failure(url, LOCAL)).code, "invalid_url");
  }
});
