// The README's Realtime snippets, run as written: each ```ts block of the "Live updates" section
// is run by `deno run` as its own process, with only the documented placeholders replaced, against
// the local platform, while a real task goes through the pipeline; what it prints is checked.
// The webhook receiver of the "HTTP API" section runs the same way (its port replaced) and gets a
// real signed delivery from notification-worker, a redelivery, and requests signed here, tampered.
import assert from "node:assert/strict";
import { startFixtureServer } from "../_helpers/fixtures.ts";
import { startTestPlatform, waitForTask } from "../_helpers/platform.ts";
import { Webhook } from "standardwebhooks";

const ROOT = new URL("../../", import.meta.url);
const WAIT_MS = 60_000;

/** The ```ts blocks of the README section whose heading starts with `heading`. */
export async function snippetsOf(heading: string): Promise<string[]> {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  const start = readme.indexOf(`\n## ${heading}`);
  assert.ok(start >= 0, `README has a section "${heading}"`);
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
}

/** A snippet running as a process, and the lines it has printed so far. */
interface Running {
  lines: string[];
  /** Resolves once a printed line satisfies `match`. */
  waitFor(match: (line: string) => boolean, what: string): Promise<string>;
  stop(): Promise<void>;
}

async function run(code: string, env: Record<string, string> = {}): Promise<Running> {
  const file = await Deno.makeTempFile({ prefix: "darkroom-snippet-", suffix: ".ts" });
  await Deno.writeTextFile(file, code);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--config",
      `${ROOT.pathname}deno.json`,
      file,
    ],
    cwd: ROOT.pathname,
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const errors: string[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>, into: string[]) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      into.push(...parts);
    }
    if (rest) into.push(rest);
  };
  const reading = Promise.all([collect(child.stdout, lines), collect(child.stderr, errors)]);
  return {
    lines,
    async waitFor(match, what) {
      const deadline = Date.now() + WAIT_MS;
      while (true) {
        const found = lines.find(match);
        if (found !== undefined) return found;
        if (Date.now() > deadline) {
          throw new Error(
            `Timed out waiting for ${what}; printed:\n${[...lines, ...errors].join("\n")}`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already ended
      }
      await child.status;
      await reading;
      await Deno.remove(file).catch(() => {});
    },
  };
}

Deno.test({
  name: "README Realtime snippets print a real task's progress (Broadcast and postgres_changes)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const snippets = await snippetsOf("Live updates");
    const broadcast = snippets.find((s) => s.includes(`"broadcast"`));
    const changes = snippets.find((s) => s.includes(`"postgres_changes"`));
    assert.ok(broadcast && changes, "the section has a Broadcast and a postgres_changes snippet");

    const fixtures = startFixtureServer();
    const p = await startTestPlatform();
    const running: Running[] = [];
    try {
      const token = await p.userToken();
      // The task waits in its queue until both snippets listen.
      await p.platform.scheduler.stop();
      const res = await fetch(`${p.api}/tasks`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ imageUrl: `${fixtures.url}/images/canon_powershot_s40.jpg` }),
      });
      assert.equal(res.status, 202, await res.clone().text());
      const { taskId } = await res.json();

      const fill = (code: string) =>
        code.replaceAll("http://127.0.0.1:54321", p.platform.url)
          .replaceAll("<ANON_KEY>", p.platform.anonKey)
          .replaceAll("<USER_JWT>", token)
          .replaceAll("<TASK_ID>", taskId);
      const b = await run(fill(broadcast));
      running.push(b);
      const c = await run(fill(changes));
      running.push(c);
      for (const r of [b, c]) await r.waitFor((l) => l.startsWith("SUBSCRIBED"), "SUBSCRIBED");

      p.platform.scheduler.start();
      const task = await waitForTask(p.api, token, taskId);
      assert.equal(task.status, "completed");

      // Broadcast: `<event> <payload JSON>` lines, the task's state and every later INEvent.
      await b.waitFor((l) => l.startsWith("task.completed "), "task.completed");
      const done = await b.waitFor(
        (l) => l.startsWith("task.state ") && JSON.parse(l.slice(11)).status === "completed",
        "task.state completed",
      );
      assert.equal(JSON.parse(done.slice(11)).taskId, taskId);
      const events = b.lines.map((l) => l.split(" ")[0])
        .filter((e) => e.includes(".") && e !== "task.state");
      assert.deepEqual(events, [
        "image.downloaded",
        "image.metadata_extracted",
        "image.analyzed",
        "task.completed",
      ]);
      const completed = JSON.parse(b.lines.find((l) => l.startsWith("task.completed "))!.slice(15));
      assert.equal(completed.eventType, "task.completed");
      assert.equal(completed.taskId, taskId);
      assert.equal(typeof completed.timestamp, "number");

      // postgres_changes: `<eventType> <row JSON>` lines of the user's own task row.
      await c.waitFor(
        (l) => l.startsWith("UPDATE ") && JSON.parse(l.slice(7)).status === "completed",
        "the task's UPDATE to completed",
      );
      const rows = c.lines.filter((l) => l.startsWith("UPDATE ")).map((l) =>
        JSON.parse(l.slice(7))
      );
      assert.ok(rows.every((r) => r.id === taskId));
    } finally {
      for (const r of running) await r.stop();
      await p.close();
      await fixtures.close();
    }
  },
});

Deno.test({
  name: "README webhook receiver verifies a real delivery and rejects a tampered one",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const snippet = (await snippetsOf("HTTP API")).find((s) => s.includes("standardwebhooks"));
    assert.ok(snippet, "the HTTP API section has a receiver snippet using standardwebhooks");
    const secret = `whsec_${btoa("darkroom-readme-webhook-secret-32")}`;
    const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = free.addr.port;
    free.close();
    const code = snippet.replace("{ port: 8000 }", `{ port: ${port} }`);
    assert.notEqual(code, snippet, "the snippet listens on a documented port");
    const receiverUrl = `http://127.0.0.1:${port}/`;

    const fixtures = startFixtureServer();
    const receiver = await run(code, { WEBHOOK_SECRET: secret });
    const p = await startTestPlatform({ WEBHOOK_SECRET: secret });
    try {
      // Up once it answers; an unsigned request is rejected.
      const deadline = Date.now() + WAIT_MS;
      while (true) {
        const res = await fetch(receiverUrl, { method: "POST", body: "{}" }).catch(() => null);
        if (res) {
          assert.equal(res.status, 400);
          await res.body?.cancel();
          break;
        }
        if (Date.now() > deadline) throw new Error("the receiver snippet never listened");
        await new Promise((r) => setTimeout(r, 100));
      }

      // A real delivery from notification-worker, signed with WEBHOOK_SECRET.
      const token = await p.userToken();
      const res = await fetch(`${p.api}/tasks`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({
          imageUrl: `${fixtures.url}/images/canon_powershot_s40.jpg`,
          callbackUrl: receiverUrl,
        }),
      });
      assert.equal(res.status, 202, await res.clone().text());
      const { taskId } = await res.json();
      assert.equal((await waitForTask(p.api, token, taskId)).status, "completed");
      const line = await receiver.waitFor(
        (l) => l.startsWith(`verified task.completed ${taskId} `),
        "the verified delivery",
      );
      const eventId = line.split(" ")[3];
      const deliveries = async () => {
        const r = await fetch(`${p.api}/tasks/${taskId}/deliveries`, {
          headers: { authorization: `Bearer ${token}` },
        });
        return await r.json() as { deliveryId: string; status: string; eventId: string }[];
      };
      const waitDelivered = async (n: number) => {
        const until = Date.now() + WAIT_MS;
        while (true) {
          const list = await deliveries();
          if (list.filter((d) => d.status === "delivered").length >= n) return list;
          if (Date.now() > until) throw new Error(`not ${n} deliveries: ${JSON.stringify(list)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      const [delivered] = await waitDelivered(1);
      assert.equal(delivered.eventId, eventId);

      // Signed here with the same package and secret: untouched it passes; tampered it does not.
      const eventsRes = await fetch(`${p.api}/tasks/${taskId}/events`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const completed = (await eventsRes.json()).find((e: { eventType: string }) =>
        e.eventType === "task.completed"
      );
      const post = async (id: string, body: string, signedBody = body, key = secret) => {
        const now = new Date();
        const r = await fetch(receiverUrl, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "webhook-id": id,
            "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
            "webhook-signature": new Webhook(key).sign(id, now, signedBody),
          },
          body,
        });
        await r.body?.cancel();
        return r.status;
      };
      const forged = { ...completed, eventId: crypto.randomUUID() };
      const body = JSON.stringify(forged);
      const tampered = JSON.stringify({ ...forged, payload: { ...forged.payload, x: 1 } });
      assert.equal(await post(forged.eventId, tampered, body), 400, "a tampered body");
      await receiver.waitFor((l) => l === `rejected ${forged.eventId}`, "the tampered rejection");
      const other = `whsec_${btoa("some-other-secret-of-32-bytes!!!")}`;
      assert.equal(await post(forged.eventId, body, body, other), 400, "another secret");
      assert.equal(await post(forged.eventId, body), 204, "the untouched body");
      await receiver.waitFor(
        (l) => l.endsWith(` ${forged.eventId}`) && l.startsWith("verified"),
        "the untouched one",
      );

      // A redelivery repeats the eventId: verified, answered 204, handled once.
      const redeliver = await fetch(`${p.api}/deliveries/${delivered.deliveryId}/redeliver`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(redeliver.status, 202, await redeliver.clone().text());
      await redeliver.body?.cancel();
      await waitDelivered(2);
      assert.equal(receiver.lines.filter((l) => l.endsWith(` ${eventId}`)).length, 1);
      assert.ok(!receiver.lines.some((l) => l === `rejected ${eventId}`));
    } finally {
      await receiver.stop();
      await p.close();
      await fixtures.close();
    }
  },
});
