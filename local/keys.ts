/**
 * @module keys — the keys of the local platform: the legacy anon and service_role JWTs and the
 * publishable and secret API keys. Like `supabase start`, they are derived from the JWT secret
 * (the JWTs with fixed dates), so the same secret prints the same keys.
 */
import { SignJWT } from "jose";
import type { Role } from "../shared/auth.ts";

const ISSUED_AT = 1_767_225_600; // 2026-01-01
const EXPIRES_AT = 2_082_758_400; // 2036-01-01

/** A long-lived key for a role, signed HS256 with `secret`. */
export async function platformKey(role: Role, secret: string): Promise<string> {
  return await new SignJWT({ role, iss: "supabase-demo" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(ISSUED_AT)
    .setExpirationTime(EXPIRES_AT)
    .sign(new TextEncoder().encode(secret));
}

/** The local platform's API keys, as hosted projects have them. */
export interface PlatformApiKeys {
  /** `sb_publishable_…`: acts as anon. */
  publishableKey: string;
  /** `sb_secret_…`: acts as service_role. */
  secretKey: string;
}

/**
 * The publishable and secret keys of the local platform, derived from `secret` (HMAC-SHA256 of
 * their kind), so the same secret prints the same keys and no one can derive it back from them.
 */
export async function platformApiKeys(secret: string): Promise<PlatformApiKeys> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const derive = async (kind: string) =>
    base64Url(
      new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(kind))),
    ).slice(0, 32);
  return {
    publishableKey: `sb_publishable_${await derive("publishable")}`,
    secretKey: `sb_secret_${await derive("secret")}`,
  };
}

function base64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}
