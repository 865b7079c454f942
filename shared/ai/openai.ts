/**
 * @module ai/openai — the OpenAI provider: one Chat Completions call with the image as a data
 * URL and a strict JSON Schema answer, through the official `openai` SDK.
 *
 * Two retry loops, each owning one kind of failure:
 * - transport: the SDK retries 408/409/429/5xx, timeouts and connection errors itself
 *   (`maxRetries`), sleeping as `retry-after-ms` / `Retry-After` say (up to 60 s). When it gives
 *   up, the error becomes a retryable `ai_error` carrying Retry-After for the queue's backoff.
 * - answer: a malformed answer (not JSON, wrong shape, refusal) is asked for once more; a second
 *   one is a permanent `ai_error`, since the same input would fail the same way.
 */
import OpenAI from "openai";
import { StageError } from "../errors.ts";
import { parseRetryAfter } from "../net/retry_after.ts";
import {
  type AiProvider,
  type Analysis,
  type AnalysisInput,
  ProviderRateLimited,
  type TokenUsage,
} from "./types.ts";
import {
  ANALYSIS_JSON_SCHEMA,
  ANALYSIS_SCHEMA_NAME,
  modelTagSources,
  parseAnalysisAnswer,
} from "./analysis_schema.ts";
import { buildAnalysisPrompt, planImage } from "./prompt.ts";

type ChatCompletion = OpenAI.Chat.Completions.ChatCompletion;
type ContentPart = OpenAI.Chat.Completions.ChatCompletionContentPart;

/** Options of {@linkcode createOpenAiProvider}. */
export interface OpenAiProviderOptions {
  /** Secret; sent only as the Authorization header, never logged or put in an error. */
  apiKey: string;
  /** Default: the SDK's (OPENAI_BASE_URL, else https://api.openai.com/v1). */
  baseURL?: string;
  /** A vision model, e.g. "gpt-4o-mini". */
  model: string;
  /** Per HTTP attempt, in milliseconds. */
  timeoutMs: number;
  /** Transport retries the SDK makes after the first attempt. Default 3. */
  maxRetries?: number;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  /** Image detail the model looks at; "low" is a fixed, small token cost. Default "low". */
  imageDetail?: "low" | "high" | "auto";
  /** Cap on the answer's tokens (reasoning models count their reasoning here). Default 1024. */
  maxCompletionTokens?: number;
  /**
   * Who handles a 429 that is a rate limit: "sdk" retries it in place as Retry-After says;
   * "caller" gets a {@linkcode ProviderRateLimited} at the first one (the AI stage then drains the
   * shared bucket and waits without spending a try). Default "sdk".
   */
  rateLimits?: "sdk" | "caller";
}

/** Calls the model at most this many times per analysis when answers are malformed. */
const ANSWER_ATTEMPTS = 2;

/**
 * Creates the "openai" provider.
 *
 * @example
 * const ai = createOpenAiProvider({ apiKey, model: "gpt-4o-mini", timeoutMs: 30_000 });
 * const analysis = await ai.analyze({ bytes, contentType: "image/jpeg", ...measured, signal });
 */
export function createOpenAiProvider(opts: OpenAiProviderOptions): AiProvider {
  const client = new OpenAI({
    apiKey: opts.apiKey,
    baseURL: opts.baseURL,
    timeout: opts.timeoutMs,
    maxRetries: opts.maxRetries ?? 3,
    fetch: opts.rateLimits === "caller" ? noRetryOn429(opts.fetch ?? fetch) : opts.fetch,
    // The SDK would log to the console in its own format; our errors carry what matters.
    logLevel: "off",
  });
  const redact = (text: string) => redactSecrets(text, opts.apiKey);

  async function analyze(input: AnalysisInput): Promise<Analysis> {
    const image = planImage({
      contentType: input.contentType,
      format: input.format,
      byteSize: input.bytes.byteLength,
    });
    const prompt = buildAnalysisPrompt({ ...input, image });
    const content: ContentPart[] = [{ type: "text", text: prompt.user }];
    if (image.send) {
      const url = `data:${image.mimeType};base64,${toBase64(input.bytes)}`;
      content.push({ type: "image_url", image_url: { url, detail: opts.imageDetail ?? "low" } });
    }
    const usages: TokenUsage[] = [];
    let reason = "";
    for (let attempt = 1; attempt <= ANSWER_ATTEMPTS; attempt++) {
      let completion: ChatCompletion;
      try {
        completion = await client.chat.completions.create({
          model: opts.model,
          messages: [{ role: "system", content: prompt.system }, { role: "user", content }],
          response_format: {
            type: "json_schema",
            json_schema: { name: ANALYSIS_SCHEMA_NAME, strict: true, schema: ANALYSIS_JSON_SCHEMA },
          },
          max_completion_tokens: opts.maxCompletionTokens ?? 1024,
        }, { signal: input.signal });
      } catch (err) {
        const error = toStageError(err, input.signal, opts.timeoutMs, redact);
        if (
          opts.rateLimits === "caller" && error instanceof StageError && error.retryable &&
          err instanceof OpenAI.APIError && err.status === 429
        ) {
          throw new ProviderRateLimited(error.message, error.retryAfterSeconds);
        }
        throw error;
      }
      if (completion.usage) usages.push(toUsage(completion.usage));
      const parsed = readAnswer(completion);
      if (parsed.ok) {
        return {
          provider: "openai",
          model: opts.model,
          caption: parsed.answer.caption,
          tags: parsed.answer.tags,
          safety: parsed.answer.safety,
          usage: sumUsage(usages),
          tagSources: modelTagSources(parsed.answer.tags),
        };
      }
      reason = parsed.reason;
    }
    throw new StageError("ai_error", `AI answer was malformed: ${shorten(redact(reason))}`, false);
  }

  return { name: "openai", model: opts.model, metered: true, analyze };
}

/** A fetch whose 429 answers tell the SDK not to retry them (its `x-should-retry` header). */
function noRetryOn429(inner: typeof fetch): typeof fetch {
  return async (input, init) => {
    const res = await inner(input, init);
    if (res.status !== 429) return res;
    const headers = new Headers(res.headers);
    headers.set("x-should-retry", "false");
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  };
}

function readAnswer(completion: ChatCompletion): ReturnType<typeof parseAnalysisAnswer> {
  const choice = completion.choices?.[0];
  if (!choice) return { ok: false, reason: "no choices in the response" };
  const { message } = choice;
  if (message?.refusal) return { ok: false, reason: `the model refused: ${message.refusal}` };
  if (typeof message?.content !== "string" || message.content === "") {
    return { ok: false, reason: `empty content (finish_reason ${choice.finish_reason})` };
  }
  if (choice.finish_reason === "length") {
    return { ok: false, reason: "the answer was cut off (finish_reason length)" };
  }
  return parseAnalysisAnswer(message.content);
}

/** Maps what the SDK threw, after its own retries, to a StageError. */
function toStageError(
  err: unknown,
  signal: AbortSignal | undefined,
  timeoutMs: number,
  redact: (text: string) => string,
): unknown {
  if (signal?.aborted) {
    if (signal.reason instanceof StageError) return signal.reason;
    const reason = signal.reason as { name?: unknown; message?: unknown } | undefined;
    const why = reason?.name === "TimeoutError"
      ? ": the stage's time budget ran out"
      : typeof reason?.message === "string"
      ? `: ${shorten(redact(reason.message.replace(/\.$/, "")))}`
      : "";
    return new StageError("ai_error", `AI call was aborted${why}`, true, { cause: err });
  }
  if (err instanceof OpenAI.APIConnectionTimeoutError) {
    return new StageError("ai_error", `AI call timed out after ${timeoutMs} ms`, true);
  }
  if (err instanceof OpenAI.APIUserAbortError) {
    return new StageError("ai_error", "AI call was aborted", true);
  }
  if (err instanceof OpenAI.APIConnectionError) {
    return new StageError("ai_error", "Cannot reach the AI service: connection failed", true);
  }
  if (err instanceof OpenAI.APIError && typeof err.status === "number") {
    const status = err.status;
    const body = err.error as { message?: unknown; code?: unknown } | undefined;
    const detail = typeof body?.message === "string" ? `: ${shorten(redact(body.message))}` : "";
    const message = `AI service answered ${status}${detail}`;
    // A 429 for an exhausted quota does not pass with time.
    const transient = (status === 408 || status === 409 || status === 429 || status >= 500) &&
      body?.code !== "insufficient_quota";
    const retryAfterSeconds = transient ? parseRetryAfter(err.headers) : undefined;
    return new StageError("ai_error", message, transient, { retryAfterSeconds });
  }
  if (err instanceof OpenAI.OpenAIError) {
    return new StageError("ai_error", `AI call failed: ${shorten(redact(err.message))}`, false);
  }
  return err;
}

function toUsage(u: NonNullable<ChatCompletion["usage"]>): TokenUsage {
  return {
    promptTokens: u.prompt_tokens ?? 0,
    completionTokens: u.completion_tokens ?? 0,
    totalTokens: u.total_tokens ?? 0,
  };
}

/** Tokens of every call the analysis made (a retried malformed answer was paid for too). */
function sumUsage(usages: TokenUsage[]): TokenUsage | null {
  if (usages.length === 0) return null;
  return usages.reduce((a, b) => ({
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    totalTokens: a.totalTokens + b.totalTokens,
  }));
}

/** Removes the key, and anything shaped like an OpenAI key (401 bodies echo a masked one). */
function redactSecrets(text: string, apiKey: string): string {
  const out = apiKey ? text.split(apiKey).join("[redacted]") : text;
  return out.replace(/\bsk-[A-Za-z0-9_*.-]+/g, "[redacted]");
}

function shorten(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Base64 of the bytes; `Uint8Array.prototype.toBase64` where the runtime has it. */
function toBase64(bytes: Uint8Array): string {
  const native = (bytes as Uint8Array & { toBase64?: () => string }).toBase64;
  if (typeof native === "function") return native.call(bytes);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
