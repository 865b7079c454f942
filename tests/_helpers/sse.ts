/**
 * @module tests/_helpers/sse — reads a Server-Sent Events response into messages, for a
 * bounded count or time.
 */

/** One SSE message. */
export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/**
 * Opens `url` and collects messages until `count` arrived or `timeoutMs` passed; then closes.
 */
export async function readSse(
  url: string,
  headers: Record<string, string>,
  opts: { count?: number; timeoutMs: number },
): Promise<{ status: number; messages: SseMessage[] }> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), opts.timeoutMs);
  const messages: SseMessage[] = [];
  let status = 0;
  try {
    const res = await fetch(url, { headers, signal: abort.signal });
    status = res.status;
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      return { status, messages };
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    while (opts.count === undefined || messages.length < opts.count) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const msg: SseMessage = { data: "" };
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const [field, ...rest] = line.split(":");
          const value = rest.join(":").replace(/^ /, "");
          if (field === "id") msg.id = value;
          else if (field === "event") msg.event = value;
          else if (field === "data") data.push(value);
        }
        if (data.length === 0) continue;
        msg.data = data.join("\n");
        messages.push(msg);
      }
    }
    await reader.cancel().catch(() => {});
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return { status, messages };
}
