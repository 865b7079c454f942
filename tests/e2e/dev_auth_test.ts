// The development sign-in at /auth/v1, driven by the real supabase-js client against the local
// platform: sign up, sign in with a password (a wrong one is refused with GoTrue's error code),
// anonymous sign-in, token refresh, getUser, sign-out; the tokens are shaped as Supabase Auth's
// and act as their user at the api (a task of one user is hidden from another). And the start
// banner prints a user token that the api accepts.
import assert from "node:assert/strict";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { openTestDb, type TestDb } from "../_helpers/db.ts";
import { startTestPlatform, type TestPlatform } from "../_helpers/platform.ts";

function client(p: TestPlatform): SupabaseClient {
  return createClient(p.platform.url, p.platform.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  });
}

async function createTask(p: TestPlatform, token: string): Promise<string> {
  const res = await fetch(`${p.api}/tasks`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    // Nothing listens on port 9: the task fails, which does not matter here.
    body: JSON.stringify({ imageUrl: "http://127.0.0.1:9/x.jpg" }),
  });
  assert.equal(res.status, 202);
  return (await res.json()).taskId;
}

async function getTask(p: TestPlatform, token: string, id: string): Promise<number> {
  const res = await fetch(`${p.api}/tasks/${id}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await res.body?.cancel();
  return res.status;
}

async function listTaskIds(p: TestPlatform, token: string): Promise<string[]> {
  const res = await fetch(`${p.api}/tasks`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  const body = await res.json();
  return body.tasks.map((t: { taskId: string }) => t.taskId);
}

Deno.test({
  name: "dev sign-in: supabase-js signUp, signInWithPassword, anonymous, refresh, getUser, signOut",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const p = await startTestPlatform();
    const alice = client(p);
    const bob = client(p);
    try {
      const email = `alice-${crypto.randomUUID().slice(0, 8)}@example.com`;
      let aliceToken = "";
      let aliceId = "";

      await t.step(
        "signUp returns a session whose token is shaped as Supabase Auth's",
        async () => {
          const { data, error } = await alice.auth.signUp({
            email,
            password: "correct horse",
            options: { data: { name: "Alice" } },
          });
          assert.equal(error, null);
          assert.ok(data.session && data.user);
          assert.equal(data.user.email, email);
          assert.equal(data.user.is_anonymous, false);
          assert.deepEqual(data.user.user_metadata, { name: "Alice" });
          assert.equal(data.session.token_type, "bearer");
          assert.equal(data.session.expires_in, 3600);
          aliceToken = data.session.access_token;
          aliceId = data.user.id;
          assert.deepEqual(decodeProtectedHeader(aliceToken), { alg: "HS256", typ: "JWT" });
          const claims = decodeJwt(aliceToken);
          assert.equal(claims.sub, aliceId);
          assert.equal(claims.role, "authenticated");
          assert.equal(claims.aud, "authenticated");
          assert.equal(claims.is_anonymous, false);
          assert.equal(claims.email, email);
          assert.equal(claims.iss, `${p.platform.url}/auth/v1`);
          assert.equal(claims.aal, "aal1");
          assert.equal(typeof claims.session_id, "string");
          assert.equal(claims.exp! - claims.iat!, 3600);
        },
      );

      await t.step(
        "signUp again with the same email is refused (user_already_exists)",
        async () => {
          const { data, error } = await client(p).auth.signUp({ email, password: "other pass" });
          assert.equal(data.session, null);
          assert.equal(error?.status, 422);
          assert.equal(error?.code, "user_already_exists");
        },
      );

      await t.step("a short password is refused as weak_password", async () => {
        const { error } = await client(p).auth.signUp({
          email: `x-${email}`,
          password: "123",
        });
        assert.equal(error?.code, "weak_password");
        assert.equal(error?.status, 422);
      });

      await t.step("signInWithPassword: right password signs in, wrong is refused", async () => {
        const wrong = await bob.auth.signInWithPassword({ email, password: "wrong horse" });
        assert.equal(wrong.data.session, null);
        assert.equal(wrong.error?.status, 400);
        assert.equal(wrong.error?.code, "invalid_credentials");
        assert.equal(wrong.error?.message, "Invalid login credentials");
        const nobody = await bob.auth.signInWithPassword({
          email: "nobody@example.com",
          password: "whatever1",
        });
        assert.equal(nobody.error?.code, "invalid_credentials");

        const again = client(p);
        const { data, error } = await again.auth.signInWithPassword({
          email: email.toUpperCase(),
          password: "correct horse",
        });
        assert.equal(error, null);
        assert.equal(data.user?.id, aliceId);
        assert.notEqual(
          decodeJwt(data.session!.access_token).session_id,
          decodeJwt(aliceToken).session_id,
        );
      });

      await t.step(
        "getUser answers the signed-in user; refreshSession issues a new token",
        async () => {
          const { data, error } = await alice.auth.getUser();
          assert.equal(error, null);
          assert.equal(data.user?.id, aliceId);
          const { data: refreshed, error: refreshError } = await alice.auth.refreshSession();
          assert.equal(refreshError, null);
          assert.equal(refreshed.user?.id, aliceId);
          const claims = decodeJwt(refreshed.session!.access_token);
          assert.equal(claims.session_id, decodeJwt(aliceToken).session_id);
          aliceToken = refreshed.session!.access_token;
          // A spent refresh token is refused.
          const spent = await fetch(`${p.platform.url}/auth/v1/token?grant_type=refresh_token`, {
            method: "POST",
            headers: { apikey: p.platform.anonKey, "content-type": "application/json" },
            body: JSON.stringify({ refresh_token: "not-a-token" }),
          });
          assert.equal(spent.status, 400);
          assert.equal((await spent.json()).code, "refresh_token_not_found");
        },
      );

      await t.step("without an apikey the sign-in refuses, as the gateway does", async () => {
        const res = await fetch(`${p.platform.url}/auth/v1/signup`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "{}",
        });
        assert.equal(res.status, 401);
        assert.equal((await res.json()).code, "no_api_key");
      });

      await t.step("signInAnonymously gives an anonymous authenticated user", async () => {
        const { data, error } = await bob.auth.signInAnonymously();
        assert.equal(error, null);
        assert.equal(data.user?.is_anonymous, true);
        const claims = decodeJwt(data.session!.access_token);
        assert.equal(claims.role, "authenticated");
        assert.equal(claims.is_anonymous, true);
        assert.notEqual(claims.sub, aliceId);
      });

      await t.step(
        "the tokens act as their users at the api: Bob cannot read Alice's task",
        async () => {
          const { data } = await bob.auth.getSession();
          const bobToken = data.session!.access_token;
          const id = await createTask(p, aliceToken);
          assert.equal(await getTask(p, aliceToken, id), 200);
          assert.equal(await getTask(p, bobToken, id), 404);
          assert.ok((await listTaskIds(p, aliceToken)).includes(id));
          assert.ok(!(await listTaskIds(p, bobToken)).includes(id));
        },
      );

      await t.step("signOut ends the session: getUser with its token is refused", async () => {
        const { data } = await alice.auth.getSession();
        const token = data.session!.access_token;
        const { error } = await alice.auth.signOut();
        assert.equal(error, null);
        const res = await fetch(`${p.platform.url}/auth/v1/user`, {
          headers: { apikey: p.platform.anonKey, authorization: `Bearer ${token}` },
        });
        assert.equal(res.status, 403);
        assert.equal((await res.json()).code, "session_not_found");
      });

      await t.step("a restart keeps the accounts (saved under DATA_DIR)", async () => {
        await p.restart();
        const { data, error } = await client(p).auth.signInWithPassword({
          email,
          password: "correct horse",
        });
        assert.equal(error, null);
        assert.equal(data.user?.id, aliceId);
      });
    } finally {
      await p.close();
    }
  },
});

// The `start` task's own command, run directly (as tests/e2e/start_test.ts does).
const ROOT = new URL("../../", import.meta.url);
const START = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks.start as string;

Deno.test({
  name: "deno task start prints a ready user token that the api accepts as that user",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "darkroom-devauth-" });
    let db: TestDb | undefined;
    const env: Record<string, string> = {
      PORT: "0",
      DATA_DIR: `${dataDir}/.data`,
      LOG_LEVEL: "warn",
    };
    if (Deno.env.get("DATABASE_URL")) {
      db = await openTestDb("none");
      env.DATABASE_URL = db.url!;
    }
    const [, ...args] = START.split(/\s+/);
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      env,
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    try {
      let out = "";
      const deadline = Date.now() + 60_000;
      while (!out.includes("Stop with")) {
        if (Date.now() > deadline) throw new Error(`no start banner after 60 s:\n${out}`);
        const { value, done } = await reader.read();
        if (done) throw new Error(`exited before serving:\n${out}`);
        out += value;
      }
      const url = /API URL: (http:\/\/\S+)/.exec(out)![1];
      const token = /user token: (\S+)/.exec(out)?.[1];
      assert.ok(token, out);
      const claims = decodeJwt(token);
      assert.equal(claims.role, "authenticated");
      assert.equal(claims.email, "dev@darkroom.local");
      assert.match(out, new RegExp(`user ${claims.sub}`));
      const res = await fetch(`${url}/functions/v1/api/tasks`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      const anonKey = /anon key: (\S+)/.exec(out)![1];
      const me = await fetch(`${url}/auth/v1/user`, {
        headers: { apikey: anonKey, authorization: `Bearer ${token}` },
      });
      assert.equal(me.status, 200);
      assert.equal((await me.json()).email, "dev@darkroom.local");
    } finally {
      child.kill("SIGTERM");
      await reader.cancel().catch(() => {});
      await child.status;
      await db?.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});
