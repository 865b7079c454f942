/**
 * @module keys — the anon and service_role keys of the local platform. Like `supabase start`,
 * they are derived from the JWT secret with fixed dates, so the same secret prints the same keys.
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
