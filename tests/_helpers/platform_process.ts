/**
 * @module tests/_helpers/platform_process — `deno task start` as a separate process (so a test can
 * `kill -9` it), and the loopback servers the crash tests put around it: an image server that
 * drips, a webhook receiver that counts, and a TCP proxy in front of PostgreSQL that can be cut.
 */
import { fixtureBytes } from "./fixtures.ts";

const ROOT = new URL("../../", import.meta.url);
const START = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks.start as string;

/** A platform process started by {@linkcode startPlatformProcess}. */
export interface PlatformProcess {
  child: Deno.ChildProcess;
  /** Base URL of the api function. */
  api: string;
  /** The process's printed service_role key. */
  serviceRoleKey: string;
  /** Everything it printed, once it has exited. */
  output: Promise<string>;
}

/** Runs the `start` task's own command (no `deno task` in between, so signals reach it). */
export async function startPlatformProcess(env: Record<string, string>): Promise<PlatformProcess> {
  const [, ...args] = START.split(/\s+/);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const deadline = Date.now() + 60_000;
  while (!out.includes("Stop with")) {
    if (Date.now() > deadline) throw new Error(`no start banner after 60 s:\n${out}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`exited before serving:\n${out}`);
    out += value;
  }
  // Keep draining both pipes so the process never blocks on a full one.
  const drain = async (r: ReadableStreamDefaultReader<string>) => {
    let text = "";
    while (true) {
      const { value, done } = await r.read().catch(() => ({ value: "", done: true }));
      if (done) return text;
      text += value;
    }
  };
  const rest = drain(reader);
  const errors = drain(child.stderr.pipeThrough(new TextDecoderStream()).getReader());
  const url = /API URL: (http:\/\/\S+)/.exec(out)![1];
  return {
    child,
    api: `${url}/functions/v1/api`,
    serviceRoleKey: /service_role key: (\S+)/.exec(out)![1],
    output: Promise.all([rest, errors]).then(([o, e]) => out + o + e),
  };
}

/** `kill -9`: no handler runs, nothing is given back. */
export async function killHard(p: PlatformProcess): Promise<void> {
  p.child.kill("SIGKILL");
  await p.child.status;
  await p.output;
}

/** SIGTERM, then waits for the exit (SIGKILL after 30 s). */
export async function stopGracefully(p: PlatformProcess): Promise<Deno.CommandStatus> {
  p.child.kill("SIGTERM");
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 30_000);
  const status = await p.child.status;
  clearTimeout(timer);
  await p.output;
  return status;
}

/** Waits until `check` is true, polling every 100 ms. */
export async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  ms = 120_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An image server whose every answer drips a real JPEG out in `chunks` pieces over `ms`. */
export function drippingImageServer(opts: { ms: number; chunks?: number; file?: string }) {
  let inFlight = 0;
  let started = 0;
  const bytes = fixtureBytes(opts.file ?? "nikon_d70.jpg");
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async () => {
    const image = await bytes;
    const chunks = opts.chunks ?? 4;
    const size = Math.ceil(image.length / chunks);
    started++;
    inFlight++;
    let i = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = () => {
      if (i >= 0) inFlight--;
      i = -1;
    };
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        return new Promise((resolve) => {
          timer = setTimeout(() => {
            if (i < 0) return resolve();
            controller.enqueue(image.slice(i * size, (i + 1) * size));
            i++;
            if (i * size >= image.length) {
              done();
              controller.close();
            }
            resolve();
          }, opts.ms / chunks);
        });
      },
      cancel() {
        clearTimeout(timer);
        done();
      },
    });
    return new Response(body, {
      headers: { "content-type": "image/jpeg", "content-length": String(image.length) },
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    /** Downloads being dripped right now. */
    get inFlight() {
      return inFlight;
    },
    /** Requests received. */
    get started() {
      return started;
    },
    close: () => server.shutdown(),
  };
}

/**
 * A webhook receiver that holds each POST `holdMs` before answering 200, and counts the
 * deliveries it accepted (answered) by `webhook-id`, checking that it equals the body's eventId.
 */
export function countingWebhookReceiver(opts: { holdMs: number }) {
  const accepted = new Map<string, number>();
  const acceptedAt: number[] = [];
  let inFlight = 0;
  let mismatched = 0;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    inFlight++;
    try {
      const id = req.headers.get("webhook-id") ?? "";
      const event = await req.json();
      if (event.eventId !== id) mismatched++;
      await new Promise((r) => setTimeout(r, opts.holdMs));
      // Accepted: a receiver would act on it now, whether or not the sender hears the answer.
      accepted.set(id, (accepted.get(id) ?? 0) + 1);
      acceptedAt.push(Date.now());
      return new Response("ok");
    } finally {
      inFlight--;
    }
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    accepted,
    get inFlight() {
      return inFlight;
    },
    get mismatched() {
      return mismatched;
    },
    /** Deliveries accepted since `t` (ms since the epoch). */
    acceptedSince: (t: number) => acceptedAt.filter((a) => a >= t).length,
    close: () => server.shutdown(),
  };
}

/**
 * A TCP proxy on loopback in front of `target`: `cut()` closes every connection and refuses new
 * ones (the port is closed) until `restore()` listens on the same port again.
 */
export function tcpProxy(target: { hostname: string; port: number }) {
  const conns = new Set<Deno.Conn>();
  let listener: Deno.Listener | undefined;
  let port = 0;
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    try {
      await from.readable.pipeTo(to.writable, { preventClose: false });
    } catch { /* cut */ }
    for (const c of [from, to]) {
      try {
        c.close();
      } catch { /* closed */ }
      conns.delete(c);
    }
  };
  const accept = async (l: Deno.Listener) => {
    for await (const client of l) {
      conns.add(client);
      Deno.connect(target).then((upstream) => {
        conns.add(upstream);
        pipe(client, upstream);
        pipe(upstream, client);
      }, () => {
        client.close();
        conns.delete(client);
      });
    }
  };
  const listen = () => {
    listener = Deno.listen({ hostname: "127.0.0.1", port });
    port = (listener.addr as Deno.NetAddr).port;
    accept(listener).catch(() => {});
  };
  listen();
  return {
    port,
    get connections() {
      return conns.size;
    },
    cut() {
      listener?.close();
      listener = undefined;
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      conns.clear();
    },
    restore: listen,
    close() {
      this.cut();
    },
  };
}
