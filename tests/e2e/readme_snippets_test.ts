// The README's Realtime snippets, run as written: each ```ts block of the "Live updates" section
// is run by `deno run` as its own process, with only the documented placeholders replaced, against
// the local platform, while a real task goes through the pipeline; what it prints is checked.
import assert from "node:assert/strict";
import { startFixtureServer } from "../_helpers/fixtures.ts";
import { startTestPlatform, waitForTask } from "../_helpers/platform.ts";

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

async function run(code: string): Promise<Running> {
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
