/**
 * @module cli/args — the command line of `deno task submit`, parsed with node:util's parseArgs.
 * Pure: the environment is handed in.
 */
import { parseArgs } from "node:util";

/** The local platform's address (`deno task start`). */
export const DEFAULT_URL = "http://127.0.0.1:54321";

/** What the command was asked to do. */
export interface SubmitOptions {
  /** URLs, files of URLs, image files or folders of images, in the order given. */
  inputs: string[];
  /** The Darkroom's base URL (DARKROOM_URL). Default {@linkcode DEFAULT_URL}. */
  url: string;
  /** A user's JWT, an anon/publishable key or a secret key (DARKROOM_KEY). */
  key: string;
  /** One JSON document on stdout instead of progress bars and a table. Default false. */
  json: boolean;
  /** Give up waiting after this many seconds. Default 600. */
  timeoutSeconds: number;
  /** Follow progress by polling GET /tasks/:id instead of the event stream. Default false. */
  poll: boolean;
}

/** A usage error: the message is printed with the usage, and the exit code is 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The usage text. */
export const USAGE = `Usage: deno task submit [options] <url… | file of URLs | folder of images>

Submits images to Darkroom, follows them live, prints a summary; exits 1 when any task failed.

Options:
  --url <url>      Darkroom base URL (env DARKROOM_URL, default ${DEFAULT_URL})
  --key <key>      a user's JWT, an anon/publishable key or a secret key (env DARKROOM_KEY)
  --json           print one JSON document (no progress bars)
  --poll           follow tasks by polling instead of the event stream
  --timeout <s>    give up waiting after this many seconds (default 600)
  -h, --help       this text`;

/** Parses `argv` with `env` as the fallback for --url and --key; null means --help. */
export function parseSubmitArgs(
  argv: string[],
  env: Record<string, string | undefined>,
): SubmitOptions | null {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: "string" },
        key: { type: "string" },
        json: { type: "boolean", default: false },
        poll: { type: "boolean", default: false },
        timeout: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return null;
  if (positionals.length === 0) {
    throw new UsageError("Nothing to submit: give URLs, a file or a folder");
  }
  const url = (values.url ?? env.DARKROOM_URL ?? DEFAULT_URL).replace(/\/+$/, "");
  try {
    const u = new URL(url);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error();
  } catch {
    throw new UsageError(`--url is not an http(s) URL: ${url}`);
  }
  const key = values.key ?? env.DARKROOM_KEY;
  if (!key) {
    throw new UsageError(
      "No key: pass --key or set DARKROOM_KEY (`deno task start` prints the local keys)",
    );
  }
  const timeoutSeconds = values.timeout === undefined ? 600 : Number(values.timeout);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    throw new UsageError(`--timeout is not a positive number: ${values.timeout}`);
  }
  return { inputs: positionals, url, key, json: values.json, poll: values.poll, timeoutSeconds };
}

/** The role a key acts as: `anon`, `authenticated` or `service_role` (`unknown` if unreadable). */
export function roleOfKey(key: string): string {
  if (key.startsWith("sb_publishable_")) return "anon";
  if (key.startsWith("sb_secret_")) return "service_role";
  try {
    const payload = key.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    const role = JSON.parse(atob(payload)).role;
    return typeof role === "string" ? role : "unknown";
  } catch {
    return "unknown";
  }
}
