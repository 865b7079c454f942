/**
 * @module cli/client — the few calls the CLI makes to Darkroom's api function: POST /tasks/batch,
 * GET /tasks/:id, and GET /events/stream read as Server-Sent Events that resume with
 * Last-Event-ID after a reconnect.
 */
import { roleOfKey } from "./args.ts";

/** Most tasks one POST /tasks/batch takes. */
export const BATCH_SIZE = 100;

/** An error answer of the api (`{error: {code, message}}`), or a failed connection (status 0). */
export class ApiCallError extends Error {
  override name = "ApiCallError";
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** The task resource, as far as the CLI reads it. */
export interface Task {
  taskId: string;
  status: string;
  stage: string | null;
  imageUrl: string;
  error: null | { code: string; message: string; stage: string | null };
  image: null | {
    byteSize: number;
    width: number | null;
    height: number | null;
    metadata: { make?: string | null; model?: string | null } | null;
    analysis: { tags?: string[]; caption?: string } | null;
  };
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
  [key: string]: unknown;
}

/** An INEvent off the stream, with its SSE id (the event's sequence number). */
export interface StreamEvent {
  id: string;
  eventType: string;
  taskId?: string;
}

/** Statuses a task does not leave by itself. */
export const FINAL_STATUSES = new Set(["completed", "failed", "cancelled"]);

/** Talks to one Darkroom with one key. */
export class DarkroomClient {
  readonly api: string;
  readonly role: string;

  constructor(baseUrl: string, private readonly key: string) {
    this.api = `${baseUrl.replace(/\/+$/, "")}/functions/v1/api`;
    this.role = roleOfKey(key);
  }

  /** Headers as supabase-js sends them: the key both as apikey and as the Bearer token. */
  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { apikey: this.key, authorization: `Bearer ${this.key}`, ...extra };
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.api}${path}`, {
        method,
        headers: this.headers(body === undefined ? {} : { "content-type": "application/json" }),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiCallError(
        0,
        "connection_error",
        `Cannot reach ${this.api}: ${(err as Error).message}`,
      );
    }
    const text = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch { /* not JSON: reported below */ }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiCallError(
        res.status,
        e?.code ?? "http_status",
        `${method} ${path}: ${res.status} ${e?.message ?? text.slice(0, 200)}`,
      );
    }
    return json as T;
  }

  /**
   * Submits `urls` in batches of {@linkcode BATCH_SIZE}; the task ids come back in input order.
   * A signed-in user or the service role also sends an idempotency key per URL, so a batch
   * resent after a lost answer creates nothing twice; the anon key may not (the server refuses
   * it: the key is shared by every client).
   */
  async submit(urls: string[], runId: string = crypto.randomUUID()): Promise<string[]> {
    const keyed = this.role === "authenticated" || this.role === "service_role";
    const ids: string[] = [];
    for (let start = 0; start < urls.length; start += BATCH_SIZE) {
      const tasks = urls.slice(start, start + BATCH_SIZE).map((imageUrl, i) =>
        keyed ? { imageUrl, idempotencyKey: `cli-${runId}-${start + i}` } : { imageUrl }
      );
      let answer: { tasks: { taskId: string }[] };
      try {
        answer = await this.call("POST", "/tasks/batch", { tasks });
      } catch (err) {
        // Resend once after a lost connection, only when that cannot create tasks twice.
        if (!(err instanceof ApiCallError && err.status === 0 && keyed)) throw err;
        answer = await this.call("POST", "/tasks/batch", { tasks });
      }
      ids.push(...answer.tasks.map((t) => t.taskId));
    }
    return ids;
  }

  /** GET /tasks/:id. */
  getTask(taskId: string): Promise<Task> {
    return this.call("GET", `/tasks/${taskId}`);
  }

  /**
   * Reads GET /events/stream (one task's with `taskId`, else the caller's) from `lastEventId`,
   * calling `onEvent` for each event, until `signal` aborts. A dropped connection is reopened
   * with Last-Event-ID, so nothing is lost; after `maxFailures` failures in a row it throws.
   */
  async stream(
    opts: { taskId?: string; lastEventId?: string; maxFailures?: number },
    onEvent: (e: StreamEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    let last = opts.lastEventId;
    let failures = 0;
    const maxFailures = opts.maxFailures ?? 3;
    while (!signal.aborted) {
      const url = new URL(`${this.api}/events/stream`);
      if (opts.taskId) url.searchParams.set("taskId", opts.taskId);
      try {
        const res = await fetch(url, {
          headers: this.headers(last ? { "last-event-id": last } : {}),
          signal,
        });
        if (!res.ok || !res.body) {
          await res.body?.cancel();
          throw new Error(`GET /events/stream answered ${res.status}`);
        }
        let got = false;
        for await (const message of sseMessages(res.body)) {
          failures = 0;
          got = true;
          if (!message.id || !message.data) continue;
          last = message.id;
          const event = JSON.parse(message.data) as Omit<StreamEvent, "id">;
          onEvent({ ...event, id: message.id });
        }
        // The server ended the stream (e.g. it restarted): reconnect from the last id. An end
        // with nothing read counts as a failure, so a server that keeps closing is not spun on.
        if (!got) throw new Error("GET /events/stream ended without an event");
      } catch (err) {
        if (signal.aborted) return;
        if (++failures >= maxFailures) throw err;
        await new Promise((r) => setTimeout(r, 250 * 2 ** failures));
      }
    }
  }
}

/** Splits an SSE body into messages (`id`, `event`, `data`); comments are skipped. */
export async function* sseMessages(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<{ id?: string; event?: string; data: string }> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let message: { id?: string; event?: string; data: string } = { data: "" };
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, "");
        buffer = buffer.slice(nl + 1);
        if (line === "") {
          if (message.data !== "" || message.id) yield message;
          message = { data: "" };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const v = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "id") message.id = v;
        else if (field === "event") message.event = v;
        else if (field === "data") message.data = message.data ? `${message.data}\n${v}` : v;
      }
    }
  } finally {
    reader.releaseLock();
  }
}
