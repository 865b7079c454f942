/**
 * @module tests/_helpers/fixtures — the real camera images in tests/fixtures (copied unmodified
 * from ../shared/fixtures), their exiftool values, and a loopback HTTP server that serves them
 * (plus a few bad answers).
 */

/** Where the fixtures live: tests/fixtures, so a clone of the project alone tests itself. */
export const FIXTURES_DIR = new URL("../fixtures/", import.meta.url);

/** One image's values as exiftool reports them. */
export interface OracleImage {
  file: string;
  sha256: string;
  byteSize: number;
  mimeType: string;
  width: number;
  height: number;
  make: string | null;
  model: string | null;
  takenAt: string | null;
  orientation: number | null;
  gps: { lat: number; lon: number } | null;
}

/** The oracle's images. */
export async function loadOracle(): Promise<OracleImage[]> {
  const text = await Deno.readTextFile(new URL("oracle.json", FIXTURES_DIR));
  return JSON.parse(text).images;
}

/** Bytes of a fixture image. */
export async function fixtureBytes(file: string): Promise<Uint8Array> {
  return await Deno.readFile(new URL(`images/${file}`, FIXTURES_DIR));
}

/** A running fixture server. */
export interface FixtureServer {
  url: string;
  /** Requests served, by path. */
  hits: Map<string, number>;
  close(): Promise<void>;
}

/**
 * Serves /images/<file> from the fixtures, and: /status/<code>, /html (a web page),
 * /redirect?to=<url> (302), /slow (answers headers, then stalls), /flaky/<n>/<file> (503 with
 * Retry-After: 1 for the first n requests, then the image).
 */
export function startFixtureServer(): FixtureServer {
  const hits = new Map<string, number>();
  const pending = new Set<ReturnType<typeof setTimeout>>();
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    const image = /^\/images\/([a-z0-9_.]+)$/.exec(url.pathname);
    if (image) {
      try {
        return new Response(await fixtureBytes(image[1]) as Uint8Array<ArrayBuffer>, {
          headers: { "content-type": "application/octet-stream" },
        });
      } catch {
        return new Response("not found", { status: 404 });
      }
    }
    const flaky = /^\/flaky\/(\d+)\/([a-z0-9_.]+)$/.exec(url.pathname);
    if (flaky) {
      if ((hits.get(url.pathname) ?? 0) <= Number(flaky[1])) {
        return new Response("busy", { status: 503, headers: { "retry-after": "1" } });
      }
      return new Response(await fixtureBytes(flaky[2]) as Uint8Array<ArrayBuffer>);
    }
    const status = /^\/status\/(\d{3})$/.exec(url.pathname);
    if (status) return new Response("status", { status: Number(status[1]) });
    if (url.pathname === "/html") {
      return new Response("<!doctype html><html><body>not an image</body></html>", {
        headers: { "content-type": "image/jpeg" },
      });
    }
    if (url.pathname === "/redirect") {
      return new Response(null, {
        status: 302,
        headers: { location: url.searchParams.get("to")! },
      });
    }
    if (url.pathname === "/slow") {
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(new Uint8Array([0xff, 0xd8, 0xff]));
          const t = setTimeout(() => {
            pending.delete(t);
            try {
              controller.close();
            } catch { /* cancelled */ }
          }, 30_000);
          pending.add(t);
        },
      });
      return new Response(body, { headers: { "content-type": "image/jpeg" } });
    }
    return new Response("not found", { status: 404 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    hits,
    async close() {
      for (const t of pending) clearTimeout(t);
      await server.shutdown();
    },
  };
}
