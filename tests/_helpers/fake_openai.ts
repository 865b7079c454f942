/**
 * @module tests/_helpers/fake_openai — a local server speaking the OpenAI Chat Completions wire
 * format (POST /v1/chat/completions), scripted per test with a queue of responses and recording
 * every request it receives. When the queue is empty it answers with {@linkcode DEFAULT_ANSWER}.
 *
 * @example
 * const fake = startFakeOpenAI([{ status: 429, headers: { "retry-after": "1" } }]);
 * const ai = createOpenAiProvider({ apiKey: "test", baseURL: fake.baseURL, model: "m", timeoutMs: 5000 });
 * // ... fake.requests[0].body.model === "m"
 * await fake.close();
 */

/** One scripted response. `body`: an object is sent as JSON, a string as is. */
export interface FakeResponse {
  /** Default 200. */
  status?: number;
  headers?: Record<string, string>;
  /** Default: a chat completion carrying {@linkcode DEFAULT_ANSWER}. */
  body?: unknown;
  /** Waits this long before answering (ends early when the client goes away). */
  delayMs?: number;
}

/** A request the fake received, body parsed as JSON when it is JSON. */
export interface FakeRequest {
  method: string;
  path: string;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
  /** performance.now() when it arrived. */
  at: number;
}

/** A running fake. */
export interface FakeOpenAI {
  /** Base URL for the SDK, ending in /v1. */
  baseURL: string;
  requests: FakeRequest[];
  enqueue(...responses: FakeResponse[]): void;
  close(): Promise<void>;
}

/** The answer the fake gives when nothing is queued: a valid image_analysis. */
export const DEFAULT_ANSWER = {
  caption: "A photograph used as a test fixture.",
  tags: ["photo", "test", "fixture"],
  safety: { adult: false, violence: false, selfHarm: false },
};

/** A chat.completion body whose message content is `content` (an object is JSON-encoded). */
export function chatCompletion(
  content: unknown,
  opts: { model?: string; refusal?: string; finishReason?: string; usage?: number[] } = {},
): Record<string, unknown> {
  const [prompt, completion] = opts.usage ?? [120, 30];
  return {
    id: `chatcmpl-${crypto.randomUUID()}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: opts.model ?? "fake-model",
    choices: [{
      index: 0,
      message: {
        role: "assistant",
        content: opts.refusal
          ? null
          : typeof content === "string"
          ? content
          : JSON.stringify(content),
        refusal: opts.refusal ?? null,
      },
      finish_reason: opts.finishReason ?? "stop",
      logprobs: null,
    }],
    usage: {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
    },
  };
}

/** An OpenAI error body. */
export function errorBody(message: string, type: string, code: string | null = null) {
  return { error: { message, type, param: null, code } };
}

/** Starts the fake on 127.0.0.1 (a free port), answering `script` first. */
export function startFakeOpenAI(script: FakeResponse[] = []): FakeOpenAI {
  const queue = [...script];
  const requests: FakeRequest[] = [];
  // Ends pending delays on close(), so shutdown does not wait for them.
  const closing = new AbortController();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const at = performance.now();
    const text = await req.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch { /* keep the text */ }
    const path = new URL(req.url).pathname;
    requests.push({ method: req.method, path, headers: req.headers, body, at });
    if (req.method !== "POST" || path !== "/v1/chat/completions") {
      return Response.json(
        errorBody(`Unknown route ${req.method} ${path}`, "invalid_request_error"),
        {
          status: 404,
        },
      );
    }
    const next = queue.shift() ?? {};
    if (next.delayMs) await sleep(next.delayMs, closing.signal);
    const payload = next.body === undefined ? chatCompletion(DEFAULT_ANSWER) : next.body;
    const headers = new Headers(next.headers);
    if (typeof payload !== "string" && !headers.has("content-type")) {
      headers.set("content-type", "application/json");
    }
    return new Response(typeof payload === "string" ? payload : JSON.stringify(payload), {
      status: next.status ?? 200,
      headers,
    });
  });
  return {
    baseURL: `http://127.0.0.1:${server.addr.port}/v1`,
    requests,
    enqueue: (...responses) => void queue.push(...responses),
    close: () => {
      closing.abort();
      return server.shutdown();
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
