/**
 * @module dev_auth — a development sign-in at /auth/v1 on the local platform, so supabase-js's
 * `auth.signUp`, `signInWithPassword`, `signInAnonymously`, token refresh, `getUser` and
 * `signOut` work without hosted Supabase Auth. Tokens are shaped as Supabase Auth (GoTrue)
 * issues them: HS256 with the platform's JWT secret, claims iss, sub, aud and role
 * 'authenticated', exp, iat, email, app_metadata, user_metadata, aal, amr, session_id and
 * is_anonymous; answers and errors use GoTrue's JSON (API version 2024-01-01).
 *
 * Development only: the local platform mounts it, nothing deploys it (hosted projects have real
 * Auth). Users and sessions live in memory, saved to `<DATA_DIR>/dev_auth.json` when a file is
 * given, so a restart keeps the accounts.
 */
import { SignJWT } from "jose";
import type { JwtVerifier } from "../shared/auth.ts";
import type { ExtraRoute } from "./function_host.ts";

/** Seconds an access token lives, as GoTrue's default JWT expiry. */
export const ACCESS_TOKEN_TTL_S = 3600;
const API_VERSION = "2024-01-01";
const PBKDF2_ITERATIONS = 50_000;

/** A user as GoTrue returns it. */
export interface DevUser {
  id: string;
  aud: "authenticated";
  role: "authenticated";
  email: string;
  email_confirmed_at?: string;
  phone: string;
  confirmed_at?: string;
  last_sign_in_at: string;
  app_metadata: Record<string, unknown>;
  user_metadata: Record<string, unknown>;
  identities: unknown[];
  created_at: string;
  updated_at: string;
  is_anonymous: boolean;
}

interface StoredUser {
  user: DevUser;
  /** `salt:hash`, PBKDF2-SHA256 in base64url; absent for anonymous users. */
  password?: string;
}

interface Session {
  id: string;
  userId: string;
  method: "password" | "anonymous";
}

interface Saved {
  users: StoredUser[];
}

/** Options of {@linkcode createDevAuth}. */
export interface DevAuthOptions {
  /** The platform's JWT secret: tokens are signed with it (HS256). */
  jwtSecret: string;
  /** Base URL of the platform: tokens carry `iss` = `<url>/auth/v1`. */
  url: string;
  /** Checks the `apikey` header, as the gateway in front of Supabase Auth does. */
  verifier: JwtVerifier;
  /** Where users are saved between restarts. Default: memory only. */
  file?: string;
}

/** The development sign-in: its route and a way to mint a ready user's session. */
export interface DevAuth {
  route: ExtraRoute;
  /**
   * A session of the development user `email` (created with `password` if missing, password
   * checked otherwise), as `signInWithPassword` would return it.
   */
  signIn(email: string, password: string): Promise<SessionBody>;
}

/** A session as GoTrue returns it. */
export interface SessionBody {
  access_token: string;
  token_type: "bearer";
  expires_in: number;
  expires_at: number;
  refresh_token: string;
  user: DevUser;
}

/** An error answered in GoTrue's shape. */
class AuthError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = "AuthError";
  }
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Builds the development sign-in; loads saved users from `opts.file` when it exists. */
export async function createDevAuth(opts: DevAuthOptions): Promise<DevAuth> {
  const secret = new TextEncoder().encode(opts.jwtSecret);
  const users = new Map<string, StoredUser>();
  const byEmail = new Map<string, string>();
  /** refresh token -> session */
  const refreshTokens = new Map<string, Session>();
  const sessions = new Map<string, Session>();

  if (opts.file) {
    try {
      const saved = JSON.parse(await Deno.readTextFile(opts.file)) as Saved;
      for (const u of saved.users ?? []) {
        users.set(u.user.id, u);
        if (u.user.email) byEmail.set(u.user.email, u.user.id);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }

  const save = async () => {
    if (!opts.file) return;
    const body: Saved = { users: [...users.values()] };
    await Deno.writeTextFile(opts.file, JSON.stringify(body));
  };

  const newUser = (email: string, meta: Record<string, unknown>, anonymous: boolean): DevUser => {
    const now = new Date().toISOString();
    return {
      id: crypto.randomUUID(),
      aud: "authenticated",
      role: "authenticated",
      email,
      ...(anonymous ? {} : { email_confirmed_at: now, confirmed_at: now }),
      phone: "",
      last_sign_in_at: now,
      app_metadata: anonymous ? {} : { provider: "email", providers: ["email"] },
      user_metadata: meta,
      identities: [],
      created_at: now,
      updated_at: now,
      is_anonymous: anonymous,
    };
  };

  const issue = async (user: DevUser, session: Session): Promise<SessionBody> => {
    const iat = Math.floor(Date.now() / 1000);
    const exp = iat + ACCESS_TOKEN_TTL_S;
    const accessToken = await new SignJWT({
      aud: "authenticated",
      role: "authenticated",
      email: user.email,
      phone: user.phone,
      app_metadata: user.app_metadata,
      user_metadata: user.user_metadata,
      aal: "aal1",
      amr: [{ method: session.method, timestamp: iat }],
      session_id: session.id,
      is_anonymous: user.is_anonymous,
    })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuer(`${opts.url}/auth/v1`)
      .setSubject(user.id)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(secret);
    const refreshToken = randomToken();
    refreshTokens.set(refreshToken, session);
    return {
      access_token: accessToken,
      token_type: "bearer",
      expires_in: ACCESS_TOKEN_TTL_S,
      expires_at: exp,
      refresh_token: refreshToken,
      user,
    };
  };

  const startSession = async (stored: StoredUser, method: Session["method"]) => {
    const session: Session = { id: crypto.randomUUID(), userId: stored.user.id, method };
    sessions.set(session.id, session);
    stored.user.last_sign_in_at = new Date().toISOString();
    return await issue(stored.user, session);
  };

  const signUp = async (body: Record<string, unknown>): Promise<SessionBody> => {
    const meta = isObject(body.data) ? body.data : {};
    if (body.email === undefined && body.password === undefined && body.phone === undefined) {
      const stored: StoredUser = { user: newUser("", meta, true) };
      users.set(stored.user.id, stored);
      await save();
      return await startSession(stored, "anonymous");
    }
    if (body.phone !== undefined) {
      throw new AuthError(400, "phone_provider_disabled", "Phone signups are disabled");
    }
    const email = normaliseEmail(body.email);
    const password = checkPassword(body.password);
    if (byEmail.has(email)) {
      throw new AuthError(422, "user_already_exists", "User already registered");
    }
    const stored: StoredUser = {
      user: newUser(email, meta, false),
      password: await hashPassword(password),
    };
    users.set(stored.user.id, stored);
    byEmail.set(email, stored.user.id);
    await save();
    return await startSession(stored, "password");
  };

  const passwordGrant = async (body: Record<string, unknown>): Promise<SessionBody> => {
    const invalid = new AuthError(400, "invalid_credentials", "Invalid login credentials");
    if (typeof body.email !== "string" || typeof body.password !== "string") {
      throw new AuthError(400, "validation_failed", "An email address and a password are required");
    }
    const id = byEmail.get(body.email.trim().toLowerCase());
    const stored = id ? users.get(id) : undefined;
    if (!stored?.password || !(await verifyPassword(body.password, stored.password))) {
      throw invalid;
    }
    return await startSession(stored, "password");
  };

  const refreshGrant = async (body: Record<string, unknown>): Promise<SessionBody> => {
    const token = typeof body.refresh_token === "string" ? body.refresh_token : "";
    const session = refreshTokens.get(token);
    const stored = session && sessions.has(session.id) ? users.get(session.userId) : undefined;
    if (!session || !stored) {
      throw new AuthError(
        400,
        "refresh_token_not_found",
        "Invalid Refresh Token: Refresh Token Not Found",
      );
    }
    // Rotation, as GoTrue does: the used token is spent.
    refreshTokens.delete(token);
    return await issue(stored.user, session);
  };

  /** The session and user of a request's Bearer token (one of ours, session still open). */
  const bearer = async (req: Request): Promise<{ stored: StoredUser; session: Session }> => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.get("authorization") ?? "");
    if (!m) throw new AuthError(401, "no_authorization", "This endpoint requires a Bearer token");
    let caller;
    try {
      caller = await opts.verifier.verify(m[1]);
    } catch (err) {
      throw new AuthError(403, "bad_jwt", `invalid JWT: ${(err as Error).message}`);
    }
    const sessionId = caller.claims.session_id;
    const stored = caller.userId ? users.get(caller.userId) : undefined;
    if (!stored) {
      throw new AuthError(403, "user_not_found", "User from sub claim in JWT does not exist");
    }
    const session = typeof sessionId === "string" ? sessions.get(sessionId) : undefined;
    if (!session) {
      throw new AuthError(
        403,
        "session_not_found",
        "Session from session_id claim in JWT does not exist",
      );
    }
    return { stored, session };
  };

  const logout = async (req: Request, scope: string) => {
    const { stored, session } = await bearer(req);
    const ends = (s: Session) =>
      scope === "others"
        ? s.userId === stored.user.id && s.id !== session.id
        : scope === "local"
        ? s.id === session.id
        : s.userId === stored.user.id;
    for (const [id, s] of sessions) if (ends(s)) sessions.delete(id);
    for (const [t, s] of refreshTokens) if (ends(s)) refreshTokens.delete(t);
  };

  const route: ExtraRoute = async (req, url) => {
    if (!url.pathname.startsWith("/auth/v1/")) return null;
    const path = url.pathname.slice("/auth/v1".length);
    if (req.method === "OPTIONS") return new Response(null, { status: 204, headers: CORS });
    try {
      if (path === "/.well-known/jwks.json" && req.method === "GET") {
        // Only the legacy HS256 secret signs here: no public keys to publish.
        return json(200, { keys: [] });
      }
      if (path === "/health" || path === "/settings") {
        return json(200, path === "/health" ? { name: "darkroom-dev-auth" } : SETTINGS);
      }
      await checkApiKey(req, opts.verifier);
      if (path === "/signup" && req.method === "POST") {
        return json(200, await signUp(await readBody(req)));
      }
      if (path === "/token" && req.method === "POST") {
        const grant = url.searchParams.get("grant_type");
        const body = await readBody(req);
        if (grant === "password") return json(200, await passwordGrant(body));
        if (grant === "refresh_token") return json(200, await refreshGrant(body));
        throw new AuthError(400, "validation_failed", `Unsupported grant_type ${grant}`);
      }
      if (path === "/user" && req.method === "GET") {
        return json(200, (await bearer(req)).stored.user);
      }
      if (path === "/logout" && req.method === "POST") {
        await logout(req, url.searchParams.get("scope") ?? "global");
        return new Response(null, { status: 204, headers: CORS });
      }
      throw new AuthError(
        404,
        "not_found",
        `The development sign-in does not offer ${req.method} ${path}`,
      );
    } catch (err) {
      if (err instanceof AuthError) {
        return json(err.status, { code: err.code, message: err.message });
      }
      throw err;
    }
  };

  return {
    route,
    async signIn(email, password) {
      const id = byEmail.get(email.toLowerCase());
      if (!id) return await signUp({ email, password });
      return await passwordGrant({ email, password });
    },
  };
}

/** What GET /auth/v1/settings answers: only email sign-up (auto-confirmed) and anonymous. */
const SETTINGS = {
  external: { email: true, phone: false, anonymous_users: true },
  disable_signup: false,
  mailer_autoconfirm: true,
  phone_autoconfirm: false,
  sms_provider: "",
};

const CORS: Record<string, string> = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers":
    "authorization, apikey, content-type, x-client-info, x-supabase-api-version",
  "access-control-allow-methods": "GET, POST, OPTIONS",
};

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      "content-type": "application/json",
      "x-supabase-api-version": API_VERSION,
      "cache-control": "no-store",
      ...CORS,
    },
  });
}

/** The gateway in front of Auth wants one of the project's keys in `apikey`. */
async function checkApiKey(req: Request, verifier: JwtVerifier): Promise<void> {
  const key = req.headers.get("apikey");
  if (!key) throw new AuthError(401, "no_api_key", "No API key found in request");
  try {
    await verifier.verify(key);
  } catch {
    throw new AuthError(401, "bad_api_key", "Invalid API key");
  }
}

async function readBody(req: Request): Promise<Record<string, unknown>> {
  const text = await req.text();
  if (!text) return {};
  try {
    const body = JSON.parse(text);
    if (isObject(body)) return body;
  } catch {
    // answered below
  }
  throw new AuthError(400, "bad_json", "Could not parse request body as JSON");
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function normaliseEmail(v: unknown): string {
  const email = typeof v === "string" ? v.trim().toLowerCase() : "";
  if (!EMAIL.test(email)) {
    throw new AuthError(
      400,
      "validation_failed",
      "Unable to validate email address: invalid format",
    );
  }
  return email;
}

function checkPassword(v: unknown): string {
  if (typeof v !== "string" || v.length < 6) {
    throw new AuthError(422, "weak_password", "Password should be at least 6 characters.");
  }
  return v;
}

function randomToken(): string {
  return b64url(crypto.getRandomValues(new Uint8Array(18)));
}

function b64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

async function pbkdf2(password: string, salt: Uint8Array): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(password),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: salt as BufferSource, iterations: PBKDF2_ITERATIONS },
    key,
    256,
  );
  return new Uint8Array(bits);
}

async function hashPassword(password: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  return `${b64url(salt)}:${b64url(await pbkdf2(password, salt))}`;
}

async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [salt, hash] = stored.split(":");
  const bin = Uint8Array.from(
    atob(salt.replace(/-/g, "+").replace(/_/g, "/")),
    (c) => c.charCodeAt(0),
  );
  const got = b64url(await pbkdf2(password, bin));
  let diff = got.length ^ hash.length;
  for (let i = 0; i < Math.min(got.length, hash.length); i++) {
    diff |= got.charCodeAt(i) ^ hash.charCodeAt(i);
  }
  return diff === 0;
}
