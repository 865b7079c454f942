// dashboard/sse.js followSse() against a loopback SSE server that drops the connection: it
// reconnects with Last-Event-ID, so no event is missed or repeated, and gives up on a 401.
import assert from "node:assert/strict";
import { followSse } from "../../dashboard/sse.js";

Deno.test("followSse() resumes after a dropped connection from the last event id", async () => {
  const seenIds: (string | null)[] = [];
  const auth: (string | null)[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
    const last = req.headers.get("last-event-id");
    seenIds.push(last);
    auth.push(req.headers.get("authorization"));
    const from = Number(last ?? 0);
    // Each connection sends two events, then ends: the client must come back for more.
    const body = `: hi\n\n${
      [from + 1, from + 2].map((n) => `id: ${n}\ndata: {"n":${n}}\n\n`).join("")
    }`;
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  const got: number[] = [];
  const ctl = new AbortController();
  const states: string[] = [];
  try {
    await followSse({
      url: `http://127.0.0.1:${server.addr.port}/events/stream`,
      headers: { authorization: "Bearer k" },
      signal: ctl.signal,
      onState: (s: string) => states.push(s),
      onMessage: (m: { data: string }) => {
        got.push(JSON.parse(m.data).n);
        if (got.length === 6) ctl.abort();
      },
    });
  } finally {
    await server.shutdown();
  }
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(seenIds, [null, "2", "4"]);
  assert.deepEqual(auth, ["Bearer k", "Bearer k", "Bearer k"]);
  assert.ok(states.includes("offline") && states.includes("live"), states.join());
});

Deno.test("followSse() gives up on a 401 and reports the api's message", async () => {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    () =>
      Response.json({ error: { code: "unauthorized", message: "Invalid JWT" } }, { status: 401 }),
  );
  const states: string[] = [];
  try {
    await followSse({
      url: `http://127.0.0.1:${server.addr.port}/`,
      headers: {},
      signal: new AbortController().signal,
      onState: (s: string, d?: string) => states.push(d ? `${s}: ${d}` : s),
      onMessage: () => {},
    });
  } finally {
    await server.shutdown();
  }
  assert.deepEqual(states, ["connecting", "error: Invalid JWT"]);
});
