// loadConfig() parses the environment once; a bad value stops start-up naming the variable.
import assert from "node:assert/strict";
import { ConfigError, DEV_JWT_SECRET, loadConfig } from "../../shared/config.ts";

Deno.test("loadConfig() gives the design's defaults", () => {
  const c = loadConfig({});
  assert.equal(c.PORT, 54321);
  assert.equal(c.DATA_DIR, ".data");
  assert.equal(c.AI_PROVIDER, "local");
  assert.equal(c.STORAGE_BACKEND, "fs");
  assert.equal(c.ALLOW_PRIVATE_NETWORK, false);
  assert.equal(c.MAX_ATTEMPTS, 5);
  assert.equal(c.MAX_IMAGE_BYTES, 20 * 1024 * 1024);
  assert.equal(c.MAX_IMAGE_PIXELS, 100_000_000);
  assert.equal(c.DOWNLOAD_TIMEOUT_MS, 15_000);
  assert.equal(c.COMPUTE_WORKERS, 1);
  assert.equal(c.COMPUTE_DEADLINE_MS, 10_000);
  assert.equal(c.STOP_TIMEOUT_MS, 10_000);
  assert.equal(c.JWT_SECRET, DEV_JWT_SECRET);
  assert.equal(c.databaseUrl, undefined);
});

Deno.test("loadConfig() takes DATABASE_URL before SUPABASE_DB_URL and treats empty as unset", () => {
  assert.equal(loadConfig({ SUPABASE_DB_URL: "postgres://b" }).databaseUrl, "postgres://b");
  assert.equal(
    loadConfig({ DATABASE_URL: "postgres://a", SUPABASE_DB_URL: "postgres://b" }).databaseUrl,
    "postgres://a",
  );
  assert.equal(loadConfig({ PORT: "" }).PORT, 54321);
});

Deno.test("loadConfig() reads booleans and numbers", () => {
  const c = loadConfig({
    ALLOW_PRIVATE_NETWORK: "true",
    MAX_ATTEMPTS: "3",
    PORT: "0",
    COMPUTE_WORKERS: "2",
  });
  assert.equal(c.ALLOW_PRIVATE_NETWORK, true);
  assert.equal(c.COMPUTE_WORKERS, 2);
  assert.equal(c.MAX_ATTEMPTS, 3);
  assert.equal(c.PORT, 0);
  assert.equal(loadConfig({ ALLOW_PRIVATE_NETWORK: "off" }).ALLOW_PRIVATE_NETWORK, false);
});

Deno.test("loadConfig() names the variable with a bad value", () => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ PORT: "eighty" }, /PORT/],
    [{ PORT: "70000" }, /PORT/],
    [{ AI_PROVIDER: "gemini" }, /AI_PROVIDER/],
    [{ MAX_ATTEMPTS: "0" }, /MAX_ATTEMPTS/],
    [{ COMPUTE_WORKERS: "0" }, /COMPUTE_WORKERS/],
    [{ STOP_TIMEOUT_MS: "0" }, /STOP_TIMEOUT_MS/],
    [{ COMPUTE_DEADLINE_MS: "soon" }, /COMPUTE_DEADLINE_MS/],
    [{ ALLOW_PRIVATE_NETWORK: "maybe" }, /ALLOW_PRIVATE_NETWORK/],
    [{ OPENAI_BASE_URL: "not a url" }, /OPENAI_BASE_URL/],
    [{ JWT_SECRET: "short" }, /JWT_SECRET/],
    [{ AI_PROVIDER: "openai" }, /OPENAI_API_KEY/],
    [{ STORAGE_BACKEND: "supabase" }, /SUPABASE_URL/],
  ];
  for (const [env, name] of bad) {
    assert.throws(() => loadConfig(env), (err) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, name);
      return true;
    }, JSON.stringify(env));
  }
});

Deno.test("loadConfig() stores blobs in Supabase Storage when the function runs on Supabase", () => {
  const env = { SUPABASE_URL: "https://x.supabase.co", SUPABASE_SERVICE_ROLE_KEY: "k" };
  assert.equal(loadConfig(env).STORAGE_BACKEND, "supabase");
  assert.equal(loadConfig({ ...env, STORAGE_BACKEND: "fs" }).STORAGE_BACKEND, "fs");
});

Deno.test("loadConfig() reports every bad setting at once", () => {
  assert.throws(
    () => loadConfig({ PORT: "eighty", MAX_ATTEMPTS: "0", AI_PROVIDER: "gpt" }),
    (err) => {
      assert.ok(err instanceof ConfigError);
      for (const name of ["PORT", "MAX_ATTEMPTS", "AI_PROVIDER"]) {
        assert.match(err.message, new RegExp(name));
      }
      return true;
    },
  );
});
