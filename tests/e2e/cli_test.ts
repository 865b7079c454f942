// `deno task submit` as a subprocess against the local platform started in-process, fed by the
// fixture server: a completed image with its camera in the summary (exit 0), a 404 URL (exit 1,
// its error code in the summary), --json matching the tasks, and a folder of images served by
// the CLI on loopback. Covers the per-task stream, the user's stream and --poll.
import assert from "node:assert/strict";
import { signJwt } from "../../shared/auth.ts";
import { FIXTURES_DIR, startFixtureServer } from "../_helpers/fixtures.ts";
import { startTestPlatform } from "../_helpers/platform.ts";

const ROOT = new URL("../../", import.meta.url);

/** Runs the CLI with `args`, the platform's URL and `key`; its exit code and output. */
async function submit(url: string, key: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-env", "cli/submit.ts", ...args],
    cwd: ROOT,
    env: { DARKROOM_URL: url, DARKROOM_KEY: key, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "cli submit (local platform, subprocess)",
  // The platform and fixture server live across steps and are closed in `finally`.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const fixtures = startFixtureServer();
    const p = await startTestPlatform();
    const base = p.platform.url;
    const user = await p.userToken();
    const anon = await signJwt({ role: "anon" }, p.config.JWT_SECRET, "1h");
    try {
      await t.step("submit exits 0 and lists the completed image with its camera", async () => {
        const r = await submit(base, user, [`${fixtures.url}/images/nikon_gps_1.jpg`]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /IMAGE\s+STATUS\s+DURATION\s+SIZE\s+CAMERA/);
        assert.match(
          r.stdout,
          /nikon_gps_1\.jpg\s+completed\s+\d+\.\ds\s+153\.7 KB\s+NIKON COOLPIX P6000/,
        );
        assert.match(r.stdout, /1\/1 completed/);
        assert.ok(!r.stdout.includes("\x1b["), "no ANSI when stdout is not a terminal");
      });

      await t.step(
        "submit exits 1 on a failed task and names its error code (anon key)",
        async () => {
          const r = await submit(base, anon, [
            `${fixtures.url}/status/404`,
            `${fixtures.url}/images/canon_powershot_s40.jpg`,
          ]);
          assert.equal(r.code, 1, r.stdout + r.stderr);
          assert.match(r.stdout, /404\s+failed\s+.*http_status: /);
          assert.match(r.stdout, /canon_powershot_s40\.jpg\s+completed\s+.*Canon PowerShot S40/);
          assert.match(r.stdout, /1\/2 completed/);
        },
      );

      await t.step("submit --json prints one document matching the tasks", async () => {
        const urls = [
          `${fixtures.url}/images/nikon_d70.jpg`,
          `${fixtures.url}/images/sony_d700.jpg`,
        ];
        const r = await submit(base, user, ["--json", ...urls]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const doc = JSON.parse(r.stdout);
        assert.equal(doc.ok, true);
        assert.deepEqual(doc.tasks.map((x: { imageUrl: string }) => x.imageUrl), urls);
        for (const task of doc.tasks) {
          const res = await fetch(`${p.api}/tasks/${task.taskId}`, {
            headers: { authorization: `Bearer ${user}` },
          });
          assert.deepEqual(task, await res.json());
          assert.equal(task.status, "completed");
        }
        assert.equal(doc.tasks[1].image.metadata.model, "DSC-D700");
      });

      await t.step("submit serves a folder of images on loopback (--poll)", async () => {
        const dir = await Deno.makeTempDir({ prefix: "darkroom-cli-" });
        try {
          for (const f of ["canon_powershot_s40.jpg", "plain.png"]) {
            await Deno.copyFile(new URL(`images/${f}`, FIXTURES_DIR), `${dir}/${f}`);
          }
          await Deno.writeTextFile(`${dir}/notes.txt`, "not an image");
          const r = await submit(base, user, ["--poll", dir]);
          assert.equal(r.code, 0, r.stdout + r.stderr);
          assert.match(r.stdout, /canon_powershot_s40\.jpg\s+completed\s+.*Canon PowerShot S40/);
          assert.match(r.stdout, /plain\.png\s+completed/);
          assert.match(r.stdout, /2\/2 completed/);
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      });

      await t.step("submit prints a one-line hint when the platform blocks loopback", async () => {
        const strict = await startTestPlatform({ ALLOW_PRIVATE_NETWORK: "false" });
        try {
          const r = await submit(strict.platform.url, await strict.userToken(), [
            `${fixtures.url}/images/plain.png`,
          ]);
          assert.equal(r.code, 1, r.stdout + r.stderr);
          assert.match(r.stdout, /plain\.png\s+failed\s+.*blocked_address: /);
          const hints = r.stderr.split("\n").filter((l) => l.startsWith("hint: "));
          assert.deepEqual(hints.length, 1, r.stderr);
          assert.match(hints[0], /ALLOW_PRIVATE_NETWORK=true deno task start/);
        } finally {
          await strict.close();
        }
      });

      await t.step("submit without a key exits 2 with the usage", async () => {
        const r = await submit(base, "", ["https://example.com/a.jpg"]);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /No key: pass --key or set DARKROOM_KEY/);
        assert.match(r.stderr, /Usage: deno task submit/);
      });
    } finally {
      await p.close();
      await fixtures.close();
    }
  },
});
