// `deno task start` as a user runs it: a process that prints its URLs and keys, serves the
// api, and stops cleanly on SIGTERM; a second start on the same data applies nothing new.
import assert from "node:assert/strict";
import { openTestDb, type TestDb } from "../_helpers/db.ts";

const ROOT = new URL("../../", import.meta.url);

// The `start` task's own command, run directly so that a stop by signal reaches it (deno task
// would sit between them).
const START = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks.start as string;

async function start(env: Record<string, string>) {
  const [program, ...args] = START.split(/\s+/);
  assert.equal(program, "deno");
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const deadline = Date.now() + 60_000;
  while (!out.includes("service_role key:") || !out.includes("Stop with")) {
    if (Date.now() > deadline) throw new Error(`no start banner after 60 s:\n${out}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`exited before serving:\n${out}`);
    out += value;
  }
  const url = /API URL: (http:\/\/\S+)/.exec(out)![1];
  return { child, reader, out, url };
}

async function stop(p: Awaited<ReturnType<typeof start>>) {
  p.child.kill("SIGTERM");
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 15_000);
  let rest = "";
  while (true) {
    const { value, done } = await p.reader.read();
    if (done) break;
    rest += value;
  }
  const status = await p.child.status;
  clearTimeout(timer);
  await p.child.stderr.cancel();
  return { status, rest };
}

Deno.test({
  name: "deno task start serves the api and stops on SIGTERM",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "darkroom-start-" });
    let db: TestDb | undefined;
    // A DATA_DIR that does not exist yet, as on a fresh clone.
    const env: Record<string, string> = {
      PORT: "0",
      DATA_DIR: `${dataDir}/fresh/.data`,
      LOG_LEVEL: "warn",
    };
    if (Deno.env.get("DATABASE_URL")) {
      db = await openTestDb("none");
      env.DATABASE_URL = db.url!;
    }
    try {
      const first = await start(env);
      assert.match(first.out, /anon key: eyJ/);
      assert.match(first.out, /service_role key: eyJ/);
      assert.match(first.out, /migrations applied now: [1-9]/);
      assert.match(first.out, /Private network: blocked \(set ALLOW_PRIVATE_NETWORK=true/);
      const health = await fetch(`${first.url}/functions/v1/api/health`);
      assert.equal(health.status, 200);
      assert.equal((await health.json()).ok, true);
      const anonKey = /anon key: (\S+)/.exec(first.out)![1];
      const created = await fetch(`${first.url}/functions/v1/api/tasks`, {
        method: "POST",
        headers: { authorization: `Bearer ${anonKey}`, "content-type": "application/json" },
        body: JSON.stringify({ imageUrl: "http://127.0.0.1:9/nothing.jpg" }),
      });
      assert.equal(created.status, 202);
      await created.body?.cancel();
      // An open event stream must not keep the process from stopping.
      const stream = await fetch(`${first.url}/functions/v1/api/events/stream`, {
        headers: { authorization: `Bearer ${anonKey}` },
      });
      assert.equal(stream.status, 200);
      const stopped = await stop(first);
      await stream.body?.cancel().catch(() => {});
      assert.equal(stopped.status.code, 0);
      assert.match(stopped.rest, /Stopped/);

      const second = await start(env);
      assert.match(second.out, /migrations applied now: 0/);
      assert.equal((await stop(second)).status.code, 0);
    } finally {
      await db?.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("deno task start refuses a bad setting with a message naming it", async () => {
  const [program, ...args] = START.split(/\s+/);
  assert.equal(program, "deno");
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { PORT: "eighty", DATA_DIR: await Deno.makeTempDir() },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.match(stderr, /Invalid configuration: PORT/);
  assert.doesNotMatch(stderr, /\bat .*\.ts:\d+/, "no stack trace");
});

Deno.test("deno task start on a busy port says so in one line, without a stack trace", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const [, ...args] = START.split(/\s+/);
    const out = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      env: { PORT: String(busy.addr.port), DATA_DIR: await Deno.makeTempDir() },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    assert.match(stderr, new RegExp(`Cannot start: port ${busy.addr.port} is in use`));
    assert.doesNotMatch(stderr, /\bat .*\.ts:\d+/, "no stack trace");
  } finally {
    busy.close();
  }
});
