/**
 * @module realtime/token — checks a channel's access token as the Realtime server does, with
 * its error codes and messages (realtime_channel.ex, channels_authorization.ex), so a client
 * sees the same `reason` on a refused join.
 */
import type { Caller, JwtVerifier } from "../../shared/auth.ts";

/** Why a token was refused: Realtime's error code (e.g. InvalidJWTToken) and message. */
export type TokenRefusal = { ok: false; code: string; message: string };

/** A verified token, or why it was refused. */
export type TokenCheck = { ok: true; caller: Caller; exp: number } | TokenRefusal;

const MALFORMED = {
  ok: false,
  code: "MalformedJWT",
  message: "The token provided is not a valid JWT",
} as const;

/** Verifies `token` with `verifier`; Realtime also requires the `role` and `exp` claims. */
export async function checkToken(verifier: JwtVerifier, token: unknown): Promise<TokenCheck> {
  const claims = typeof token === "string" ? peekClaims(token) : null;
  if (!claims) return MALFORMED;
  try {
    const caller = await verifier.verify(token as string);
    if (typeof caller.claims.exp !== "number") throw new Error("no exp");
    return { ok: true, caller, exp: caller.claims.exp };
  } catch (err) {
    const message = (err as Error).message;
    if (message === "JWT has expired") return expired(Number(claims.exp));
    if (message === "Invalid JWT") {
      return { ok: false, code: "JwtSignatureError", message: "Failed to validate JWT signature" };
    }
    if (typeof claims.role !== "string" || typeof claims.exp !== "number") {
      return {
        ok: false,
        code: "InvalidJWTToken",
        message: "Fields `role` and `exp` are required in JWT",
      };
    }
    return { ok: false, code: "Unauthorized", message };
  }
}

/** The refusal of a token whose `exp` (seconds) has passed. */
export function expired(exp: number): TokenRefusal {
  const ago = Math.max(0, Math.floor(Date.now() / 1000) - exp);
  return { ok: false, code: "InvalidJWTToken", message: `Token has expired ${ago} seconds ago` };
}

function peekClaims(token: string): Record<string, unknown> | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    const claims = JSON.parse(json);
    return claims && typeof claims === "object" && !Array.isArray(claims) ? claims : null;
  } catch {
    return null;
  }
}
