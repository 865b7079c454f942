// The project's API keys: a publishable key acts as anon and a secret key as service_role, in the
// apikey header or as a Bearer token; any other sb_ key is refused; a JWT next to a key decides the
// role; JWT callers are verified as before. Also: config picks Storage's key from either kind.
import assert from "node:assert/strict";
import { type Caller, JwtVerifier, signJwt } from "../../shared/auth.ts";
import { ConfigError, loadConfig } from "../../shared/config.ts";
import { edgeVerifier } from "../../shared/edge.ts";
import { ApiError } from "../../shared/errors.ts";

const SECRET = "a-project-secret-that-is-longer-than-32-characters";
const PUBLISHABLE = "sb_publishable_Q2xpZW50S2V5Rm9yVGVzdHNPbmx5MDAx";
const SECRET_KEY = "sb_secret_U2VydmVyS2V5Rm9yVGVzdHNPbmx5MDAxMDAx";
const OTHER_SECRET_KEY = "sb_secret_QW5vdGhlck5hbWVkU2VjcmV0S2V5MDAwMDAw";

const verifier = () =>
  new JwtVerifier({
    secret: SECRET,
    apiKeys: { publishable: [PUBLISHABLE], secret: [SECRET_KEY, OTHER_SECRET_KEY] },
  });

const req = (headers: Record<string, string>) => new Request("http://x/", { headers });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function rejects401(p: Promise<Caller>, message: string | RegExp, what: string) {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof ApiError, what);
    assert.equal(e.status, 401, what);
    assert.match(e.message, message instanceof RegExp ? message : new RegExp(message), what);
    return true;
  });
}

Deno.test("JwtVerifier.callerOf() takes a publishable key, in either header, as anon with no sub", async () => {
  const v = verifier();
  for (const headers of [{ apikey: PUBLISHABLE }, bearer(PUBLISHABLE)]) {
    const caller = await v.callerOf(req(headers));
    assert.deepEqual(caller, { role: "anon", userId: null, claims: { role: "anon" } });
  }
});

Deno.test("JwtVerifier.callerOf() takes a secret key, in either header or both, as service_role", async () => {
  const v = verifier();
  for (const key of [SECRET_KEY, OTHER_SECRET_KEY]) {
    for (
      const headers of [{ apikey: key }, bearer(key), { ...bearer(key), apikey: key }]
    ) {
      const caller = await v.callerOf(req(headers));
      assert.deepEqual(caller, {
        role: "service_role",
        userId: null,
        claims: { role: "service_role" },
      });
    }
  }
});

Deno.test("JwtVerifier.callerOf() refuses an sb_ key that is not one of the project's with 401", async () => {
  const v = verifier();
  const wrong = [
    PUBLISHABLE.slice(0, -1) + "2",
    SECRET_KEY.slice(0, -1) + "2",
    SECRET_KEY + "0",
    SECRET_KEY.slice(0, -1),
    "sb_secret_",
    "sb_publishable_",
    "sb_temp_abc",
    PUBLISHABLE.replace("sb_publishable_", "sb_secret_"),
  ];
  for (const key of wrong) {
    await rejects401(v.callerOf(req({ apikey: key })), "Invalid API key", `apikey ${key}`);
    await rejects401(v.callerOf(req(bearer(key))), "Invalid API key", `bearer ${key}`);
  }
  // A verifier given no keys refuses every sb_ key.
  const bare = new JwtVerifier({ secret: SECRET });
  await rejects401(bare.callerOf(req({ apikey: SECRET_KEY })), "Invalid API key", "no keys");
  await rejects401(bare.verify(PUBLISHABLE), "Invalid API key", "no keys, verify()");
});

Deno.test("JwtVerifier.callerOf() lets the Authorization JWT decide the role next to an apikey", async () => {
  const v = verifier();
  const sub = crypto.randomUUID();
  const user = await signJwt({ role: "authenticated", sub }, SECRET);
  const anon = await signJwt({ role: "anon" }, SECRET);

  const withPublishable = await v.callerOf(req({ ...bearer(user), apikey: PUBLISHABLE }));
  assert.equal(withPublishable.role, "authenticated");
  assert.equal(withPublishable.userId, sub);
  // An anon JWT with a secret apikey stays anon: the key names the project, not the caller.
  assert.equal((await v.callerOf(req({ ...bearer(anon), apikey: SECRET_KEY }))).role, "anon");
  // A publishable Bearer next to a secret apikey is the publishable key's caller.
  assert.equal(
    (await v.callerOf(req({ ...bearer(PUBLISHABLE), apikey: SECRET_KEY }))).role,
    "anon",
  );
  // A wrong sb_ apikey is refused even next to a valid JWT.
  await rejects401(
    v.callerOf(req({ ...bearer(user), apikey: SECRET_KEY + "x" })),
    "Invalid API key",
    "JWT with a wrong apikey",
  );
  // A bad JWT is not rescued by a valid apikey.
  await rejects401(
    v.callerOf(
      req({
        ...bearer(await signJwt({ role: "service_role" }, "x".repeat(40))),
        apikey: SECRET_KEY,
      }),
    ),
    "Invalid JWT",
    "forged JWT with a valid apikey",
  );
});

Deno.test("JwtVerifier.callerOf() verifies JWT callers as before, and a legacy JWT in apikey alone", async () => {
  const v = verifier();
  const service = await signJwt({ role: "service_role" }, SECRET);
  assert.equal((await v.callerOf(req(bearer(service)))).role, "service_role");
  // pg_net calls a worker with the worker key in both headers; a legacy key is a JWT.
  assert.equal(
    (await v.callerOf(req({ ...bearer(service), apikey: service }))).role,
    "service_role",
  );
  assert.equal((await v.callerOf(req({ apikey: service }))).role, "service_role");
  await rejects401(v.callerOf(req({})), "Missing", "no header");
  await rejects401(v.callerOf(req({ authorization: "Basic dXNlcjpwYXNz" })), "Bearer", "Basic");
  await rejects401(v.callerOf(req({ apikey: "not-a-key" })), "Invalid JWT", "garbage apikey");
  await rejects401(
    v.callerOf(req(bearer(await signJwt({ role: "anon" }, SECRET, -10)))),
    "expired",
    "expired JWT",
  );
});

Deno.test("JwtVerifier gives a key listed as both publishable and secret the lesser role", async () => {
  const v = new JwtVerifier({
    secret: SECRET,
    apiKeys: { secret: [SECRET_KEY], publishable: [SECRET_KEY] },
  });
  assert.equal((await v.verify(SECRET_KEY)).role, "anon");
  assert.throws(
    () => new JwtVerifier({ secret: SECRET, apiKeys: { secret: [""] } }),
    /empty API key/,
  );
});

Deno.test("edgeVerifier() takes every named key of SUPABASE_PUBLISHABLE_KEYS and SUPABASE_SECRET_KEYS", async () => {
  const v = edgeVerifier({
    JWT_SECRET: SECRET,
    SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: PUBLISHABLE }),
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET_KEY, cron: OTHER_SECRET_KEY }),
  });
  assert.equal((await v.verify(PUBLISHABLE)).role, "anon");
  assert.equal((await v.verify(SECRET_KEY)).role, "service_role");
  assert.equal((await v.verify(OTHER_SECRET_KEY)).role, "service_role");
  for (const bad of ["nope", "[]", '"sb_secret_x"', '{"default": 1}', '{"default": ""}']) {
    assert.throws(
      () => edgeVerifier({ JWT_SECRET: SECRET, SUPABASE_SECRET_KEYS: bad }),
      (e) => e instanceof ConfigError && /SUPABASE_SECRET_KEYS/.test(e.message),
      bad,
    );
  }
  // Keys alone do not make a verifier: user JWTs must still be verifiable.
  assert.throws(
    () => edgeVerifier({ SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET_KEY }) }),
    ConfigError,
  );
});

Deno.test("loadConfig() calls Storage with the service role key, else a secret key", () => {
  const url = "https://x.supabase.co";
  const secretKeys = JSON.stringify({ other: OTHER_SECRET_KEY, default: SECRET_KEY });
  const legacy = loadConfig({ SUPABASE_URL: url, SUPABASE_SERVICE_ROLE_KEY: "legacy-jwt" });
  assert.equal(legacy.storageKey, "legacy-jwt");
  assert.equal(legacy.STORAGE_BACKEND, "supabase");
  const both = loadConfig({
    SUPABASE_URL: url,
    SUPABASE_SERVICE_ROLE_KEY: "legacy-jwt",
    SUPABASE_SECRET_KEYS: secretKeys,
  });
  assert.equal(both.storageKey, "legacy-jwt");
  const onlyNew = loadConfig({ SUPABASE_URL: url, SUPABASE_SECRET_KEYS: secretKeys });
  assert.equal(onlyNew.storageKey, SECRET_KEY, "the default key");
  assert.equal(onlyNew.STORAGE_BACKEND, "supabase");
  const unnamed = loadConfig({
    SUPABASE_URL: url,
    SUPABASE_SECRET_KEYS: JSON.stringify({ a: OTHER_SECRET_KEY, b: SECRET_KEY }),
  });
  assert.equal(unnamed.storageKey, OTHER_SECRET_KEY, "no default: the first");
  assert.equal(loadConfig({ SUPABASE_SECRET_KEYS: secretKeys }).STORAGE_BACKEND, "fs");
  assert.equal(loadConfig({ SUPABASE_URL: url }).STORAGE_BACKEND, "fs");
  assert.throws(
    () => loadConfig({ SUPABASE_URL: url, SUPABASE_SECRET_KEYS: "{" }),
    (e) => e instanceof ConfigError && /SUPABASE_SECRET_KEYS/.test(e.message),
  );
});
