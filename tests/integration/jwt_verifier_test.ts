// JwtVerifier checks tokens as Supabase's verify_jwt does: HS256 with the project secret, and
// asymmetric keys from the project's JWKS (served here on loopback).
import assert from "node:assert/strict";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { JwtVerifier, signJwt } from "../../shared/auth.ts";
import { ApiError } from "../../shared/errors.ts";

const SECRET = "a-test-secret-that-is-at-least-32-characters";

async function rejects(p: Promise<unknown>, message: RegExp) {
  await assert.rejects(p, (err) => {
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 401);
    assert.match(err.message, message);
    return true;
  });
}

Deno.test("JwtVerifier.verify() accepts the three roles and returns the user id", async () => {
  const v = new JwtVerifier({ secret: SECRET });
  const sub = crypto.randomUUID();
  const user = await v.verify(await signJwt({ role: "authenticated", sub }, SECRET));
  assert.equal(user.role, "authenticated");
  assert.equal(user.userId, sub);
  assert.equal((await v.verify(await signJwt({ role: "anon" }, SECRET))).userId, null);
  assert.equal(
    (await v.verify(await signJwt({ role: "service_role" }, SECRET))).role,
    "service_role",
  );
});

Deno.test("JwtVerifier.verify() rejects unknown roles and users without a UUID sub", async () => {
  const v = new JwtVerifier({ secret: SECRET });
  await rejects(v.verify(await signJwt({ role: "postgres" as "anon" }, SECRET)), /role/);
  await rejects(
    v.verify(await signJwt({ role: "authenticated", sub: "robert'); drop table" }, SECRET)),
    /sub/,
  );
});

Deno.test("JwtVerifier.callerOf() wants a Bearer authorization header", async () => {
  const v = new JwtVerifier({ secret: SECRET });
  const req = (h?: string) => new Request("http://x/", { headers: h ? { authorization: h } : {} });
  await rejects(v.callerOf(req()), /Missing/);
  await rejects(v.callerOf(req("Basic dXNlcjpwYXNz")), /Bearer/);
  await rejects(v.callerOf(req("Bearer not.a.jwt")), /Invalid JWT/);
});

Deno.test("JwtVerifier.verify() checks ES256 tokens against the project's JWKS", async () => {
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...await exportJWK(publicKey), kid: "key-1", alg: "ES256", use: "sig" };
  let fetches = 0;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, () => {
    fetches++;
    return Response.json({ keys: [jwk] });
  });
  try {
    const v = new JwtVerifier({
      secret: SECRET,
      jwksUrl: `http://127.0.0.1:${server.addr.port}/auth/v1/.well-known/jwks.json`,
    });
    const sub = crypto.randomUUID();
    const sign = (kid: string, key = privateKey, exp: string | number = "1h") =>
      new SignJWT({ role: "authenticated", sub })
        .setProtectedHeader({ alg: "ES256", kid })
        .setExpirationTime(exp)
        .sign(key);
    const caller = await v.verify(await sign("key-1"));
    assert.equal(caller.userId, sub);
    assert.ok(fetches >= 1);
    const other = await generateKeyPair("ES256");
    await rejects(v.verify(await sign("key-1", other.privateKey)), /Invalid JWT/);
    await rejects(v.verify(await sign("key-2")), /Invalid JWT/);
    await rejects(
      v.verify(await sign("key-1", privateKey, Math.floor(Date.now() / 1000) - 10)),
      /expired/,
    );
    // HS256 tokens still verify with the secret.
    assert.equal((await v.verify(await signJwt({ role: "anon" }, SECRET))).role, "anon");
  } finally {
    await server.shutdown();
  }
});

Deno.test("JwtVerifier.verify() keeps a verified token only until its exp", async () => {
  const v = new JwtVerifier({ secret: SECRET });
  const exp = Math.floor(Date.now() / 1000) + 2;
  const token = await signJwt({ role: "service_role" }, SECRET, exp);
  assert.equal((await v.verify(token)).role, "service_role");
  assert.equal((await v.verify(token)).role, "service_role", "again, from what it kept");
  await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 50));
  await rejects(v.verify(token), /expired/);
});

Deno.test("JwtVerifier.verify() refuses a token not valid yet, each time", async () => {
  const v = new JwtVerifier({ secret: SECRET });
  const token = await new SignJWT({ role: "anon" })
    .setProtectedHeader({ alg: "HS256" })
    .setNotBefore("1h")
    .setExpirationTime("2h")
    .sign(new TextEncoder().encode(SECRET));
  await rejects(v.verify(token), /Invalid JWT/);
  await rejects(v.verify(token), /Invalid JWT/);
  // A forged signature on a kept token's claims is refused: the cache is keyed by the whole token.
  const good = await signJwt({ role: "anon" }, SECRET);
  await v.verify(good);
  const [h, p] = good.split(".");
  await rejects(v.verify(`${h}.${p}.${"A".repeat(43)}`), /Invalid JWT/);
});
