// edgeVerifier(): a deployed function verifies tokens with the project's keys or refuses to start.
import assert from "node:assert/strict";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { signJwt } from "../../shared/auth.ts";
import { ConfigError, DEV_JWT_SECRET } from "../../shared/config.ts";
import { ApiError } from "../../shared/errors.ts";
import { edgeVerifier } from "../../shared/edge.ts";

const PROJECT_SECRET = "a-project-secret-that-is-longer-than-32-characters";

Deno.test("edgeVerifier() refuses to start with no secret, no SUPABASE_JWKS and no SUPABASE_URL", () => {
  assert.throws(
    () => edgeVerifier({}),
    (e) => e instanceof ConfigError && /no way/.test(e.message),
  );
});

Deno.test("edgeVerifier() refuses the public development secret", () => {
  assert.throws(
    () => edgeVerifier({ JWT_SECRET: DEV_JWT_SECRET, SUPABASE_URL: "https://x.supabase.co" }),
    (e) => e instanceof ConfigError && /development secret/.test(e.message),
  );
});

Deno.test("edgeVerifier() refuses a SUPABASE_JWKS that is not a key set", () => {
  for (const jwks of ["not json", "{}", '{"keys": 1}']) {
    assert.throws(() => edgeVerifier({ SUPABASE_JWKS: jwks }), ConfigError, jwks);
  }
});

Deno.test("edgeVerifier() with the project's secret accepts its HS256 tokens only", async () => {
  const verifier = edgeVerifier({ JWT_SECRET: PROJECT_SECRET });
  const caller = await verifier.verify(await signJwt({ role: "service_role" }, PROJECT_SECRET));
  assert.equal(caller.role, "service_role");
  await assert.rejects(
    verifier.verify(await signJwt({ role: "service_role" }, DEV_JWT_SECRET)),
    (e) => e instanceof ApiError && e.status === 401,
  );
});

Deno.test("edgeVerifier() with SUPABASE_JWKS only accepts the project's ES256 tokens and no HS256 token", async () => {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const jwk = { ...await exportJWK(publicKey), kid: "k1", alg: "ES256", use: "sig" };
  const verifier = edgeVerifier({ SUPABASE_JWKS: JSON.stringify({ keys: [jwk] }) });
  const sub = crypto.randomUUID();
  const es256 = await new SignJWT({ role: "authenticated", sub })
    .setProtectedHeader({ alg: "ES256", kid: "k1", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(privateKey);
  assert.equal((await verifier.verify(es256)).userId, sub);
  await assert.rejects(
    verifier.verify(await signJwt({ role: "service_role" }, DEV_JWT_SECRET)),
    (e) => e instanceof ApiError && e.status === 401,
    "an HS256 token signed with the development secret is refused",
  );
});
