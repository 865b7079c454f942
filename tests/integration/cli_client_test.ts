// The CLI's client against a loopback server speaking the api's wire format: batches of 100
// (idempotency keys for a user, none for the anon key), and an event stream that drops its
// connection and is resumed with Last-Event-ID.
import assert from "node:assert/strict";
import { DarkroomClient, type StreamEvent } from "../../cli/client.ts";

const jwt = (p: object) => `x.${btoa(JSON.stringify(p)).replace(/=+$/, "")}.y`;

/** A server answering with `handler`; closed by the test. */
function serve(handler: (req: Request) => Response | Promise<Response>) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  return { url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

Deno.test("DarkroomClient.submit() sends batches of 100, idempotency keys only for a user", async () => {
  const batches: { tasks: { imageUrl: string; idempotencyKey?: string }[] }[] = [];
  let n = 0;
  const s = serve(async (req) => {
    assert.equal(new URL(req.url).pathname, "/functions/v1/api/tasks/batch");
    const body = await req.json();
    batches.push(body);
    const tasks = body.tasks.map(() => ({ taskId: `t${n++}`, traceId: "x", status: "queued" }));
    return Response.json({ tasks }, { status: 202 });
  });
  try {
    const urls = Array.from({ length: 150 }, (_, i) => `https://example.com/${i}.jpg`);
    const user = new DarkroomClient(s.url, jwt({ role: "authenticated", sub: "u" }));
    const ids = await user.submit(urls, "run");
    assert.deepEqual(ids, urls.map((_, i) => `t${i}`));
    assert.deepEqual(batches.map((b) => b.tasks.length), [100, 50]);
    assert.equal(batches[1].tasks[0].idempotencyKey, "cli-run-100");
    batches.length = 0;
    await new DarkroomClient(s.url, "sb_publishable_x").submit(urls.slice(0, 2));
    assert.ok(batches[0].tasks.every((t) => t.idempotencyKey === undefined));
  } finally {
    await s.close();
  }
});

Deno.test("DarkroomClient.stream() resumes with Last-Event-ID after a dropped connection", async () => {
  const seen: (string | null)[] = [];
  const enc = new TextEncoder();
  const s = serve((req) => {
    seen.push(req.headers.get("last-event-id"));
    const last = Number(req.headers.get("last-event-id") ?? 0);
    const body = new ReadableStream({
      start(c) {
        const id = last + 1;
        c.enqueue(enc.encode(": keep-alive\n\n"));
        c.enqueue(enc.encode(
          `id: ${id}\nevent: task.created\ndata: {"eventType":"task.created","taskId":"t${id}"}\n\n`,
        ));
        c.close(); // drops the connection after each event
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  const events: StreamEvent[] = [];
  const abort = new AbortController();
  try {
    await new DarkroomClient(s.url, "sb_secret_x").stream({ lastEventId: "41" }, (e) => {
      events.push(e);
      if (events.length === 3) abort.abort();
    }, abort.signal);
    assert.deepEqual(events.map((e) => [e.id, e.taskId]), [["42", "t42"], ["43", "t43"], [
      "44",
      "t44",
    ]]);
    assert.deepEqual(seen.slice(0, 3), ["41", "42", "43"]);
  } finally {
    await s.close();
  }
});

Deno.test("DarkroomClient.stream() throws after repeated failures (the caller then polls)", async () => {
  let calls = 0;
  const s = serve(() => {
    calls++;
    return Response.json({ error: { code: "unavailable", message: "down" } }, { status: 503 });
  });
  try {
    await assert.rejects(
      new DarkroomClient(s.url, "sb_secret_x").stream(
        { taskId: "t", maxFailures: 2 },
        () => {},
        new AbortController().signal,
      ),
      /answered 503/,
    );
    assert.equal(calls, 2);
  } finally {
    await s.close();
  }
});
