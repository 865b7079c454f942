/**
 * @module dashboard_route — serves the dashboard (dashboard/ at the repository root) at `/`, the
 * API docs page (rendering the api's /openapi.json) at `/docs`, and their assets at
 * `/dashboard/<file>`, as plain files: no build step at run time (the one bundle,
 * supabase_js.js, is committed). Locally the served
 * index.html carries the anon key as its default key (a meta tag the page reads when neither
 * `?key=` nor a saved key is set); the anon key is public by design, as on Supabase.
 */
import { errorResponse } from "../shared/http_errors.ts";
import type { ExtraRoute } from "./function_host.ts";

const DASHBOARD_DIR = new URL("../dashboard/", import.meta.url);

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  png: "image/png",
  svg: "image/svg+xml",
};

/** Only plain file names: no directories, no dot files, so nothing outside dashboard/. */
const ASSET = /^\/dashboard\/([a-z0-9_-]+\.(html|js|css|png|svg))$/;

/** The placeholder the route fills in index.html. */
export const DEFAULT_KEY_META = '<meta name="darkroom-default-key" content="">';

/**
 * The page may call any api base the user sets (connect-src), shows signed image URLs turned
 * into blob: URLs, and runs only its own scripts and styles.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self' http: https: ws: wss:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join("; ");

/** Options of {@linkcode dashboardRoute}. */
export interface DashboardRouteOptions {
  /** Filled into index.html as the page's default key. Default: none. */
  defaultKey?: string;
  /** Where the files are. Default: the repository's dashboard/. */
  dir?: URL;
}

/** The route; answers null for paths that are not the dashboard's. */
export function dashboardRoute(opts: DashboardRouteOptions = {}): ExtraRoute {
  const dir = opts.dir ?? DASHBOARD_DIR;
  return async (req, url) => {
    const file = url.pathname === "/" || url.pathname === "/dashboard" ||
        url.pathname === "/dashboard/"
      ? "index.html"
      : url.pathname === "/docs" || url.pathname === "/docs/"
      ? "docs.html"
      : ASSET.exec(url.pathname)?.[1];
    if (!file) {
      return url.pathname.startsWith("/dashboard/")
        ? errorResponse(404, "not_found", `No file ${url.pathname}`)
        : null;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return errorResponse(405, "method_not_allowed", "Use GET");
    }
    let body: Uint8Array | string;
    try {
      body = await Deno.readFile(new URL(file, dir));
    } catch {
      return errorResponse(404, "not_found", `No file ${url.pathname}`);
    }
    if (file === "index.html" && opts.defaultKey) {
      const meta = `<meta name="darkroom-default-key" content="${escapeAttr(opts.defaultKey)}">`;
      body = new TextDecoder().decode(body).replace(DEFAULT_KEY_META, meta);
    }
    const ext = file.slice(file.lastIndexOf(".") + 1);
    return new Response(req.method === "HEAD" ? null : body as BodyInit, {
      headers: {
        "content-type": TYPES[ext] ?? "application/octet-stream",
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "content-security-policy": CSP,
      },
    });
  };
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
}
