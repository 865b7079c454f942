/**
 * @module cli/inputs — turns the command's arguments into image URLs: a URL as it is, a text
 * file as one URL a line (blank lines and `#` comments skipped), an image file or a folder of
 * images served by the CLI itself on loopback for as long as it runs.
 */
import { basename, extname, join, resolve } from "node:path";
import { UsageError } from "./args.ts";

/** File name extensions served as images from a folder. */
export const IMAGE_EXTENSIONS = new Set([
  ".jpg",
  ".jpeg",
  ".png",
  ".gif",
  ".webp",
  ".tif",
  ".tiff",
  ".heic",
  ".heif",
  ".avif",
  ".bmp",
]);

/** The URLs to submit, and the loopback server of local files (if any) to close at the end. */
export interface ResolvedInputs {
  urls: string[];
  /** Local files served: URL -> path. */
  files: Map<string, string>;
  close(): Promise<void>;
}

/** Resolves `inputs` (see the module doc); throws a UsageError for anything unreadable. */
export async function resolveInputs(inputs: string[]): Promise<ResolvedInputs> {
  const urls: string[] = [];
  const localFiles: string[] = [];
  for (const input of inputs) {
    if (/^https?:\/\//i.test(input)) {
      urls.push(input);
      continue;
    }
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(input);
    } catch {
      throw new UsageError(`Not a URL, a file or a folder: ${input}`);
    }
    if (info.isDirectory) {
      const images: string[] = [];
      for await (const entry of Deno.readDir(input)) {
        if (entry.isFile && IMAGE_EXTENSIONS.has(extname(entry.name).toLowerCase())) {
          images.push(join(input, entry.name));
        }
      }
      if (images.length === 0) throw new UsageError(`No images in folder: ${input}`);
      localFiles.push(...images.sort());
    } else if (IMAGE_EXTENSIONS.has(extname(input).toLowerCase())) {
      localFiles.push(input);
    } else {
      const lines = (await Deno.readTextFile(input)).split(/\r?\n/).map((l) => l.trim());
      const found = lines.filter((l) => l !== "" && !l.startsWith("#"));
      const bad = found.find((l) => !/^https?:\/\//i.test(l));
      if (bad !== undefined) throw new UsageError(`${input}: not an http(s) URL: ${bad}`);
      urls.push(...found);
    }
  }
  const files = new Map<string, string>();
  if (localFiles.length === 0) return { urls, files, close: async () => {} };

  // Each file under /<n>/<name>: unique paths even when two folders hold the same name.
  const byPath = new Map<string, string>();
  localFiles.forEach((f, i) => byPath.set(`/${i}/${encodeURIComponent(basename(f))}`, resolve(f)));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const path = byPath.get(new URL(req.url).pathname);
      if (!path || (req.method !== "GET" && req.method !== "HEAD")) {
        return new Response("not found", { status: 404 });
      }
      try {
        if (req.method === "HEAD") {
          return new Response(null, { headers: { "content-type": "application/octet-stream" } });
        }
        const file = await Deno.open(path);
        return new Response(file.readable, {
          headers: { "content-type": "application/octet-stream" },
        });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  const origin = `http://127.0.0.1:${server.addr.port}`;
  for (const [path, file] of byPath) {
    urls.push(`${origin}${path}`);
    files.set(`${origin}${path}`, file);
  }
  return { urls, files, close: () => server.shutdown() };
}
