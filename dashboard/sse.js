/**
 * @module dashboard/sse — Server-Sent Events over fetch(), so the stream can carry an
 * Authorization header (EventSource cannot), resuming from the last event id after a drop.
 */

/** Incremental SSE parser (the WHATWG event-stream format): push text, get whole messages. */
export class SseParser {
  #buffer = "";
  #data = [];
  #event = "";
  #id = undefined;

  /**
   * Parses `text` and returns the messages it completed, each `{id, event, data}`.
   * @param {string} text
   * @returns {{id: string | undefined, event: string, data: string}[]}
   */
  push(text) {
    this.#buffer += text;
    const out = [];
    const lines = this.#buffer.split(/\r\n|\r|\n/);
    // The last piece has no line end yet (or is ""): keep it for the next chunk.
    this.#buffer = lines.pop() ?? "";
    for (const line of lines) {
      if (line === "") {
        if (this.#data.length > 0) {
          out.push({ id: this.#id, event: this.#event || "message", data: this.#data.join("\n") });
        }
        this.#data = [];
        this.#event = "";
        continue;
      }
      if (line.startsWith(":")) continue; // a comment (keep-alive)
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") this.#data.push(value);
      else if (field === "event") this.#event = value;
      else if (field === "id" && !value.includes("\0")) this.#id = value;
    }
    return out;
  }
}

/**
 * Follows an SSE endpoint until `signal` aborts: reconnects after a drop with a growing delay
 * (1 s doubling to 15 s) and sends `Last-Event-ID` so no event is missed or repeated.
 * `onState` hears "connecting", "live", "offline" (will retry) and "error" (a 4xx: gives up).
 * @param {{url: string, headers: Record<string, string>, lastEventId?: string,
 *   signal: AbortSignal, onMessage: (m: {id?: string, event: string, data: string}) => void,
 *   onState?: (state: string, detail?: string) => void, fetch?: typeof fetch}} opts
 * @returns {Promise<void>} resolves when aborted or given up
 */
export async function followSse(opts) {
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  let lastEventId = opts.lastEventId;
  let delay = 1000;
  const state = (s, d) => opts.onState?.(s, d);
  while (!opts.signal.aborted) {
    state("connecting");
    try {
      const headers = { ...opts.headers, accept: "text/event-stream" };
      if (lastEventId) headers["last-event-id"] = lastEventId;
      const res = await doFetch(opts.url, { headers, signal: opts.signal, cache: "no-store" });
      if (res.status >= 400 && res.status < 500 && res.status !== 429) {
        const body = await res.json().catch(() => null);
        state("error", body?.error?.message ?? `HTTP ${res.status}`);
        return;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      state("live");
      delay = 1000;
      const parser = new SseParser();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const message of parser.push(value)) {
          if (message.id !== undefined) lastEventId = message.id;
          opts.onMessage(message);
        }
      }
    } catch (err) {
      if (opts.signal.aborted) return;
      state("offline", String(err?.message ?? err));
    }
    if (opts.signal.aborted) return;
    state("offline");
    await sleep(delay, opts.signal);
    delay = Math.min(delay * 2, 15_000);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
