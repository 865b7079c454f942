/**
 * @module tests/integration/openai_provider_test — createOpenAiProvider() with the real openai
 * SDK over loopback HTTP against the fake Chat Completions server.
 */
import assert from "node:assert/strict";
import { createOpenAiProvider, type OpenAiProviderOptions } from "../../shared/ai/openai.ts";
import { type AnalysisInput, ProviderRateLimited } from "../../shared/ai/types.ts";
import { StageError } from "../../shared/errors.ts";
import {
  chatCompletion,
  errorBody,
  type FakeOpenAI,
  startFakeOpenAI,
} from "../_helpers/fake_openai.ts";

const API_KEY = "sk-test-0123456789abcdef";
const bytes = await Deno.readFile(
  new URL("../fixtures/images/nikon_d70.jpg", import.meta.url),
);
const input: AnalysisInput = {
  bytes,
  contentType: "image/jpeg",
  width: 100,
  height: 66,
  format: "jpeg",
  metadata: {
    make: "NIKON CORPORATION",
    model: "NIKON D70",
    takenAt: "2008-03-15T09:52:01",
    orientation: 1,
    gps: null,
    exif: {},
    partial: false,
  },
};
const safety = { adult: false, violence: false, selfHarm: false };

function provider(fake: FakeOpenAI, opts: Partial<OpenAiProviderOptions> = {}) {
  return createOpenAiProvider({
    apiKey: API_KEY,
    baseURL: fake.baseURL,
    model: "gpt-4o-mini",
    timeoutMs: 5_000,
    maxRetries: 2,
    ...opts,
  });
}

/** Runs `fn` with a fresh fake, closed afterwards whatever happens. */
async function withFake(fn: (fake: FakeOpenAI) => Promise<void>) {
  const fake = startFakeOpenAI();
  try {
    await fn(fake);
  } finally {
    await fake.close();
  }
}

async function stageError(p: Promise<unknown>): Promise<StageError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof StageError, `expected a StageError, got ${err}`);
    return err;
  }
  assert.fail("expected analyze() to throw");
}

Deno.test("analyze() sends the image as a data URL with a strict schema and normalises the answer", async () => {
  await withFake(async (fake) => {
    fake.enqueue({
      body: chatCompletion({
        caption: "  A  building at dusk. ",
        tags: ["Building", "building ", "DUSK", "Architecture", "sky"],
        safety,
      }, { usage: [1000, 42] }),
    });
    const analysis = await provider(fake).analyze(input);
    assert.deepEqual(analysis, {
      provider: "openai",
      model: "gpt-4o-mini",
      caption: "A building at dusk.",
      tags: ["building", "dusk", "architecture", "sky"],
      safety,
      usage: { promptTokens: 1000, completionTokens: 42, totalTokens: 1042 },
      tagSources: { building: "model", dusk: "model", architecture: "model", sky: "model" },
    });
    assert.equal(fake.requests.length, 1);
    const req = fake.requests[0];
    assert.equal(req.path, "/v1/chat/completions");
    assert.equal(req.headers.get("authorization"), `Bearer ${API_KEY}`);
    assert.equal(req.body.model, "gpt-4o-mini");
    assert.equal(req.body.response_format.type, "json_schema");
    assert.equal(req.body.response_format.json_schema.name, "image_analysis");
    assert.equal(req.body.response_format.json_schema.strict, true);
    assert.equal(req.body.response_format.json_schema.schema.additionalProperties, false);
    const user = req.body.messages.find((m: { role: string }) => m.role === "user");
    const image = user.content.find((p: { type: string }) => p.type === "image_url");
    const text = user.content.find((p: { type: string }) => p.type === "text");
    const expected = `data:image/jpeg;base64,${btoa(String.fromCharCode(...bytes))}`;
    assert.equal(image.image_url.url, expected);
    assert.match(text.text, /camera: "NIKON D70"/);
  });
});

Deno.test("analyze() sends no image for a tiff and says so in the prompt", async () => {
  await withFake(async (fake) => {
    const analysis = await provider(fake).analyze({
      ...input,
      contentType: "image/tiff",
      format: "tiff",
    });
    assert.deepEqual(analysis.tags, ["photo", "test", "fixture"]);
    const user = fake.requests[0].body.messages[1];
    assert.equal(user.content.length, 1);
    assert.equal(user.content[0].type, "text");
    assert.match(user.content[0].text, /not attached: the tiff format is not accepted/);
  });
});

for (
  const [name, body] of [
    ["not JSON", chatCompletion("Sure! Here is a caption: a building")],
    ["the wrong shape", chatCompletion({ caption: "x", labels: ["a", "b", "c"], safety })],
    ["2 tags", chatCompletion({ caption: "x", tags: ["a", "B", " b "], safety })],
    ["a refusal", chatCompletion(null, { refusal: "I can't help with that" })],
    ["a cut-off answer", chatCompletion('{"caption":"x","ta', { finishReason: "length" })],
  ] as const
) {
  Deno.test(`analyze() asks once more after ${name}, then fails with a permanent ai_error`, async () => {
    await withFake(async (fake) => {
      fake.enqueue({ body }, { body });
      const err = await stageError(provider(fake).analyze(input));
      assert.equal(err.code, "ai_error");
      assert.equal(err.retryable, false);
      assert.match(err.message, /^AI answer was malformed: /);
      assert.equal(fake.requests.length, 2);
    });
  });
}

Deno.test("analyze() succeeds when the second answer is good, counting both calls' tokens", async () => {
  await withFake(async (fake) => {
    fake.enqueue({ body: chatCompletion("oops", { usage: [100, 5] }) });
    const analysis = await provider(fake).analyze(input);
    assert.equal(fake.requests.length, 2);
    assert.deepEqual(analysis.usage, { promptTokens: 220, completionTokens: 35, totalTokens: 255 });
  });
});

Deno.test("analyze() waits as a 429's Retry-After says, then succeeds", async () => {
  await withFake(async (fake) => {
    fake.enqueue({
      status: 429,
      headers: { "retry-after": "1" },
      body: errorBody("Rate limit reached", "requests", "rate_limit_exceeded"),
    });
    const analysis = await provider(fake).analyze(input);
    assert.equal(analysis.caption, "A photograph used as a test fixture.");
    assert.equal(fake.requests.length, 2);
    const waited = fake.requests[1].at - fake.requests[0].at;
    assert.ok(waited >= 900, `waited ${waited} ms`);
  });
});

Deno.test("analyze() turns a 429 that does not pass into a retryable ai_error with Retry-After", async () => {
  await withFake(async (fake) => {
    const limited = {
      status: 429,
      headers: { "retry-after-ms": "10", "retry-after": "7" },
      body: errorBody("Rate limit reached", "requests", "rate_limit_exceeded"),
    };
    fake.enqueue(limited, limited, limited);
    const err = await stageError(provider(fake).analyze(input));
    assert.equal(err.code, "ai_error");
    assert.equal(err.retryable, true);
    assert.equal(err.retryAfterSeconds, 1);
    assert.match(err.message, /^AI service answered 429: Rate limit reached$/);
    assert.equal(fake.requests.length, 3);
  });
});

Deno.test("analyze() carries Retry-After seconds when the SDK has no retries left", async () => {
  await withFake(async (fake) => {
    fake.enqueue({
      status: 429,
      headers: { "retry-after": "7" },
      body: errorBody("Slow down", "x"),
    });
    const err = await stageError(provider(fake, { maxRetries: 0 }).analyze(input));
    assert.equal(err.retryable, true);
    assert.equal(err.retryAfterSeconds, 7);
    assert.equal(fake.requests.length, 1);
  });
});

Deno.test("analyze() treats a 429 for an exhausted quota as permanent", async () => {
  await withFake(async (fake) => {
    fake.enqueue({
      status: 429,
      body: errorBody(
        "You exceeded your current quota",
        "insufficient_quota",
        "insufficient_quota",
      ),
    });
    const err = await stageError(provider(fake, { maxRetries: 0 }).analyze(input));
    assert.equal(err.retryable, false);
    assert.equal(err.retryAfterSeconds, undefined);
  });
});

Deno.test("analyze() retries a 500 and succeeds", async () => {
  await withFake(async (fake) => {
    fake.enqueue({
      status: 500,
      headers: { "retry-after-ms": "20" },
      body: errorBody("boom", "server_error"),
    });
    const analysis = await provider(fake).analyze(input);
    assert.equal(analysis.tags.length, 3);
    assert.equal(fake.requests.length, 2);
  });
});

Deno.test("analyze() turns 5xx after the SDK's retries into a retryable ai_error", async () => {
  await withFake(async (fake) => {
    const down = { status: 503, headers: { "retry-after-ms": "10" }, body: "upstream down" };
    fake.enqueue(down, down);
    const err = await stageError(provider(fake, { maxRetries: 1 }).analyze(input));
    assert.equal(err.retryable, true);
    assert.equal(err.retryAfterSeconds, 1);
    assert.equal(fake.requests.length, 2);
  });
});

Deno.test("analyze() turns a timeout into a retryable ai_error", async () => {
  await withFake(async (fake) => {
    fake.enqueue({ delayMs: 3_000 }, { delayMs: 3_000 });
    const started = performance.now();
    const err = await stageError(provider(fake, { timeoutMs: 300, maxRetries: 1 }).analyze(input));
    assert.equal(err.code, "ai_error");
    assert.equal(err.retryable, true);
    assert.match(err.message, /timed out after 300 ms/);
    assert.equal(fake.requests.length, 2);
    assert.ok(performance.now() - started < 2_500);
  });
});

Deno.test("analyze() turns a refused connection into a retryable ai_error", async () => {
  const fake = startFakeOpenAI();
  const baseURL = fake.baseURL;
  await fake.close();
  const err = await stageError(
    createOpenAiProvider({ apiKey: API_KEY, baseURL, model: "m", timeoutMs: 1_000, maxRetries: 0 })
      .analyze(input),
  );
  assert.equal(err.retryable, true);
  assert.match(err.message, /Cannot reach the AI service/);
});

Deno.test("analyze() fails for good on 401 without revealing the key", async () => {
  await withFake(async (fake) => {
    fake.enqueue({
      status: 401,
      body: errorBody(
        `Incorrect API key provided: ${API_KEY}. You can find your API key at https://platform.openai.com.`,
        "invalid_request_error",
        "invalid_api_key",
      ),
    });
    const err = await stageError(provider(fake).analyze(input));
    assert.equal(err.code, "ai_error");
    assert.equal(err.retryable, false);
    assert.match(err.message, /^AI service answered 401: Incorrect API key provided: \[redacted\]/);
    assert.ok(!err.message.includes(API_KEY));
    assert.ok(!String(err.stack).includes(API_KEY));
    assert.equal(fake.requests.length, 1);
  });
});

for (const status of [400, 403, 404]) {
  Deno.test(`analyze() does not retry a ${status}`, async () => {
    await withFake(async (fake) => {
      fake.enqueue({ status, body: errorBody("nope", "invalid_request_error") });
      const err = await stageError(provider(fake).analyze(input));
      assert.equal(err.retryable, false);
      assert.equal(err.message, `AI service answered ${status}: nope`);
      assert.equal(fake.requests.length, 1);
    });
  });
}

Deno.test("analyze() stops when input.signal aborts, rethrowing a StageError reason", async () => {
  await withFake(async (fake) => {
    fake.enqueue({ delayMs: 3_000 });
    const ctl = new AbortController();
    const timer = setTimeout(
      () => ctl.abort(new StageError("cancelled", "Task was cancelled")),
      100,
    );
    const started = performance.now();
    const err = await stageError(provider(fake).analyze({ ...input, signal: ctl.signal }));
    clearTimeout(timer);
    assert.equal(err.code, "cancelled");
    assert.ok(performance.now() - started < 2_000);
    assert.equal(fake.requests.length, 1);
  });
});

Deno.test("analyze() with an already aborted signal makes no request", async () => {
  await withFake(async (fake) => {
    const err = await stageError(
      provider(fake).analyze({ ...input, signal: AbortSignal.abort(new Error("budget spent")) }),
    );
    assert.equal(err.code, "ai_error");
    assert.equal(err.retryable, true);
    assert.equal(err.message, "AI call was aborted: budget spent");
    assert.equal(fake.requests.length, 0);
  });
});

Deno.test("analyze() says the time budget ran out when AbortSignal.timeout() fires", async () => {
  await withFake(async (fake) => {
    fake.enqueue({ delayMs: 3_000 });
    const err = await stageError(
      provider(fake).analyze({ ...input, signal: AbortSignal.timeout(100) }),
    );
    assert.equal(err.retryable, true);
    assert.equal(err.message, "AI call was aborted: the stage's time budget ran out");
  });
});

Deno.test("analyze() with rateLimits caller throws ProviderRateLimited at the first 429, unretried", async () => {
  await withFake(async (fake) => {
    fake.enqueue({
      status: 429,
      headers: { "retry-after": "7" },
      body: errorBody("Rate limit reached", "requests", "rate_limit_exceeded"),
    });
    const err = await provider(fake, { rateLimits: "caller" }).analyze(input).then(
      () => assert.fail("resolved"),
      (e) => e,
    );
    assert.ok(err instanceof ProviderRateLimited, String(err));
    assert.equal(err.retryAfterSeconds, 7);
    assert.equal(fake.requests.length, 1, "the SDK did not retry it");
  });
});

Deno.test("analyze() with rateLimits caller still treats an exhausted quota as permanent", async () => {
  await withFake(async (fake) => {
    fake.enqueue({
      status: 429,
      body: errorBody(
        "You exceeded your current quota",
        "insufficient_quota",
        "insufficient_quota",
      ),
    });
    const err = await stageError(provider(fake, { rateLimits: "caller" }).analyze(input));
    assert.equal(err.retryable, false);
  });
});
