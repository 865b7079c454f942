/**
 * @module auth — verifies Supabase JWTs as the platform's `verify_jwt` does, and the project's API
 * keys (`sb_publishable_…` as anon, `sb_secret_…` as service_role), and runs a caller's queries
 * under their role and claims so that row level security decides what they see.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type JSONWebKeySet,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
  SignJWT,
} from "jose";
import type { Db, Queryable } from "./db.ts";
import { ApiError } from "./errors.ts";
import { isUuid } from "./uuid.ts";

/** The database roles a JWT can carry. */
export type Role = "anon" | "authenticated" | "service_role";

/** Who is calling: their role, user id (authenticated only) and all claims (`{role}` for a key). */
export interface Caller {
  role: Role;
  /** The user id (`sub`) of an authenticated caller. */
  userId: string | null;
  claims: JWTPayload & { role: Role };
}

const ROLES = new Set<Role>(["anon", "authenticated", "service_role"]);

/**
 * How tokens are checked: HS256 with the project's legacy secret, and asymmetric keys from a
 * JWKS (given inline, as Supabase's `SUPABASE_JWKS`, or fetched from a URL). At least one.
 */
export interface JwtVerifierOptions {
  /** The legacy HS256 secret; without it, HS256 tokens are refused. */
  secret?: string;
  /** URL of the project's JWKS, e.g. <SUPABASE_URL>/auth/v1/.well-known/jwks.json */
  jwksUrl?: string;
  /** The JWKS itself (`{keys: [...]}`), as Edge Functions receive it in SUPABASE_JWKS. */
  jwks?: JSONWebKeySet;
  /** The project's API keys; without them, every `sb_` key is refused. */
  apiKeys?: ApiKeys;
}

/** The project's API keys, compared as opaque strings in constant time. */
export interface ApiKeys {
  /** Keys acting as anon: the values of SUPABASE_PUBLISHABLE_KEYS (`sb_publishable_…`). */
  publishable?: string[];
  /** Keys acting as service_role: the values of SUPABASE_SECRET_KEYS (`sb_secret_…`). */
  secret?: string[];
}

/** One configured key, kept only as its HMAC under a per-process random key. */
interface KeyDigest {
  role: "anon" | "service_role";
  mac: Uint8Array;
}

/**
 * The configured keys as HMACs under a random key: comparing two MACs in constant time reveals
 * nothing about a key, whatever the lengths (the MAC key never leaves this process).
 */
async function digestKeys(keys: ApiKeys): Promise<{ hmac: CryptoKey; digests: KeyDigest[] }> {
  const hmac = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const digests: KeyDigest[] = [];
  const entries = [
    ...(keys.publishable ?? []).map((k) => ["anon", k] as const),
    ...(keys.secret ?? []).map((k) => ["service_role", k] as const),
  ];
  for (const [role, key] of entries) {
    digests.push({ role, mac: await macOf(hmac, key) });
  }
  return { hmac, digests };
}

async function macOf(hmac: CryptoKey, value: string): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.sign("HMAC", hmac, new TextEncoder().encode(value)),
  );
}

/** Equal byte arrays of the same length, in time independent of where they differ. */
function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Verified tokens kept by one {@linkcode JwtVerifier} (the oldest goes first). */
const VERIFIED_CACHE_SIZE = 1000;

/**
 * Verifies callers as Supabase does: a JWT or an API key in `Authorization: Bearer`, or an API key
 * in `apikey`; throws ApiError 401 with a reason.
 */
export class JwtVerifier {
  readonly #secret?: Uint8Array;
  readonly #jwks?: JWTVerifyGetKey;
  readonly #keys?: Promise<{ hmac: CryptoKey; digests: KeyDigest[] }>;
  /**
   * Tokens verified already, until their exp: the scheduler, pg_net and a client send the same
   * token again and again, and a signature check costs more than the call it guards. Only valid
   * tokens are kept (a refused one is checked again each time), at most VERIFIED_CACHE_SIZE.
   */
  readonly #verified = new Map<string, { caller: Caller; expMs: number }>();

  constructor(options: JwtVerifierOptions) {
    if (options.secret) this.#secret = new TextEncoder().encode(options.secret);
    if (options.jwks) this.#jwks = createLocalJWKSet(options.jwks);
    else if (options.jwksUrl) this.#jwks = createRemoteJWKSet(new URL(options.jwksUrl));
    if (!this.#secret && !this.#jwks) {
      throw new Error("JwtVerifier needs a secret or a JWKS: it would accept no token");
    }
    const keys = options.apiKeys;
    if (keys && (keys.publishable?.length || keys.secret?.length)) {
      if ([...keys.publishable ?? [], ...keys.secret ?? []].some((k) => !k)) {
        throw new Error("JwtVerifier was given an empty API key: it would match an empty header");
      }
      this.#keys = digestKeys(keys);
    }
  }

  /**
   * The caller of a request. A JWT in Authorization decides the role, as on Supabase (the apikey
   * names the project, the JWT the user); an API key may come in either header. An `sb_` apikey
   * must be one of the project's even next to a JWT: a wrong key is refused, never ignored.
   */
  async callerOf(req: Request): Promise<Caller> {
    const header = req.headers.get("authorization");
    const apikey = req.headers.get("apikey")?.trim() || null;
    let keyCaller: Caller | undefined;
    if (apikey?.startsWith("sb_")) keyCaller = await this.verify(apikey);
    if (header) {
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      if (!m) throw unauthorized("Authorization header is not a Bearer token");
      if (m[1] === apikey && keyCaller) return keyCaller; // pg_net and supabase-js send it twice
      return await this.verify(m[1]);
    }
    if (keyCaller) return keyCaller;
    // Without Authorization, a legacy key in apikey is a JWT (Supabase's gateway reads it so).
    if (apikey) return await this.verify(apikey);
    throw unauthorized("Missing authorization header");
  }

  /** Verifies one token: one of the project's API keys, or a JWT. */
  async verify(token: string): Promise<Caller> {
    if (token.startsWith("sb_")) {
      const role = await this.#keyRole(token);
      if (!role) throw unauthorized("Invalid API key");
      return { role, userId: null, claims: { role } };
    }
    return await this.#verifyJwt(token);
  }

  /** The role of a configured key, checking every key whatever matches first. */
  async #keyRole(token: string): Promise<"anon" | "service_role" | null> {
    if (!this.#keys) return null;
    const { hmac, digests } = await this.#keys;
    const mac = await macOf(hmac, token);
    let role: "anon" | "service_role" | null = null;
    for (const d of digests) {
      // A key listed under both names gets the lesser role.
      if (timingSafeEqual(mac, d.mac) && role !== "anon") role = d.role;
    }
    return role;
  }

  async #verifyJwt(token: string): Promise<Caller> {
    const hit = this.#verified.get(token);
    if (hit && hit.expMs > Date.now()) return hit.caller;
    if (hit) this.#verified.delete(token);
    const caller = await this.#checkJwt(token);
    const exp = caller.claims.exp;
    const nbf = caller.claims.nbf;
    // Only a token valid from now to its exp may skip the check (jose refused any other).
    if (typeof exp === "number" && (typeof nbf !== "number" || nbf * 1000 <= Date.now())) {
      if (this.#verified.size >= VERIFIED_CACHE_SIZE) {
        this.#verified.delete(this.#verified.keys().next().value!);
      }
      this.#verified.set(token, { caller, expMs: exp * 1000 });
    }
    return caller;
  }

  async #checkJwt(token: string): Promise<Caller> {
    let payload: JWTPayload;
    try {
      const header = JSON.parse(atob(token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/")));
      // Supabase always issues exp; a token without one would never expire, so it is refused
      // (as Realtime refuses it).
      const requiredClaims = ["exp"];
      if (header.alg !== "HS256" && this.#jwks) {
        ({ payload } = await jwtVerify(token, this.#jwks, {
          algorithms: ["RS256", "ES256"],
          requiredClaims,
        }));
      } else if (this.#secret) {
        ({ payload } = await jwtVerify(token, this.#secret, {
          algorithms: ["HS256"],
          requiredClaims,
        }));
      } else {
        throw new Error("HS256 tokens are not accepted without the legacy secret");
      }
    } catch (err) {
      const { code, claim } = err as { code?: string; claim?: string };
      if (code === "ERR_JWT_EXPIRED") throw unauthorized("JWT has expired");
      if (code === "ERR_JWT_CLAIM_VALIDATION_FAILED" && claim === "exp") {
        throw unauthorized("JWT has no exp claim");
      }
      throw unauthorized("Invalid JWT");
    }
    const role = payload.role as Role;
    if (!ROLES.has(role)) throw unauthorized("JWT has no known role claim");
    let userId: string | null = null;
    if (role === "authenticated") {
      if (typeof payload.sub !== "string" || !isUuid(payload.sub)) {
        throw unauthorized("JWT of an authenticated user needs a UUID sub claim");
      }
      userId = payload.sub.toLowerCase();
    }
    return { role, userId, claims: { ...payload, role } };
  }
}

function unauthorized(message: string): ApiError {
  return new ApiError(401, "unauthorized", message);
}

/**
 * Signs a token for a role, as Supabase's anon and service_role keys are signed (HS256).
 *
 * @example
 * const anonKey = await signJwt({ role: "anon" }, secret, "10y");
 */
export async function signJwt(
  claims: { role: Role; sub?: string; [k: string]: unknown },
  secret: string,
  expiresIn: string | number = "1h",
): Promise<string> {
  return await new SignJWT({ ...claims, iss: "supabase-demo" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(secret));
}

/** Options of {@linkcode asCaller}. */
export interface AsCallerOptions {
  /** The task id the request names: lets the caller read that task when it has no owner. */
  taskId?: string;
}

/**
 * Runs `fn` in one transaction as the caller's database role with their JWT claims set, the way
 * PostgREST does, so row level security applies.
 */
export async function asCaller<T>(
  db: Db,
  caller: Caller,
  fn: (tx: Queryable) => Promise<T>,
  options: AsCallerOptions = {},
): Promise<T> {
  if (!ROLES.has(caller.role)) throw new Error(`unknown role ${caller.role}`);
  return await db.transaction(async (tx) => {
    // One round trip: set_config('role', ..., true) is SET LOCAL ROLE, as PostgREST does it.
    await tx.query(
      `select set_config('role', $1, true), set_config('request.jwt.claims', $2, true),
              set_config('darkroom.task_id', $3, true)`,
      [caller.role, JSON.stringify(caller.claims), options.taskId ?? ""],
    );
    return await fn(tx);
  });
}
