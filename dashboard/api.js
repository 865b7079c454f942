/**
 * @module dashboard/api — the api's HTTP calls with the key in Authorization (and apikey, as
 * supabase-js sends it). Errors come back as ApiError with the api's `{error: {code, message}}`.
 */

/** An api answer that was not 2xx (status 0: the network failed). */
export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** A client of one api base URL with one key. */
export class Api {
  /**
   * @param {string} base e.g. http://127.0.0.1:54321/functions/v1/api
   * @param {string} key the Bearer token: a key, or a signed-in user's access token
   * @param {string} [apikey] the project's key sent as `apikey` next to a user's token
   */
  constructor(base, key, apikey) {
    this.base = base.replace(/\/+$/, "");
    this.key = key;
    this.apikey = apikey;
  }

  /** The headers every call sends. */
  get headers() {
    const h = { authorization: `Bearer ${this.key}` };
    if (this.key.startsWith("sb_")) h.apikey = this.key;
    else if (this.apikey?.startsWith("sb_")) h.apikey = this.apikey;
    return h;
  }

  /** GET /tasks: a page of the caller's tasks, newest first, `{tasks, nextCursor}`. */
  list(cursor, limit = 50) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cursor) q.set("cursor", cursor);
    return this.json(`/tasks?${q}`);
  }

  /** GET /stats */
  stats() {
    return this.json("/stats");
  }

  /** GET /images?tag= */
  images(tag) {
    return this.json(`/images?${new URLSearchParams({ tag, limit: "20" })}`);
  }

  /** GET /tags: the caller's tags, most used first. */
  tags() {
    return this.json("/tags?limit=200");
  }

  /** @param {string} path @param {RequestInit} [init] */
  async raw(path, init = {}) {
    try {
      return await fetch(`${this.base}${path}`, {
        ...init,
        headers: { ...this.headers, ...init.headers },
        cache: "no-store",
      });
    } catch (err) {
      throw new ApiError(0, "offline", `Cannot reach the api: ${err?.message ?? err}`);
    }
  }

  /** JSON of a call, or throws ApiError. */
  async json(path, init = {}) {
    const res = await this.raw(path, init);
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      throw new ApiError(
        res.status,
        body?.error?.code ?? "http_error",
        body?.error?.message ?? `HTTP ${res.status}`,
      );
    }
    return body;
  }

  /** POST /tasks. */
  createTask(imageUrl) {
    return this.json("/tasks", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ imageUrl }),
    });
  }

  /** GET /tasks/:id */
  task(id) {
    return this.json(`/tasks/${encodeURIComponent(id)}`);
  }

  /** GET /tasks/:id/events */
  events(id) {
    return this.json(`/tasks/${encodeURIComponent(id)}/events`);
  }

  /** GET /tasks/:id/deliveries, or null when this api has no such route. */
  async deliveries(id) {
    try {
      return await this.json(`/tasks/${encodeURIComponent(id)}/deliveries`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && /No route/.test(err.message)) {
        return null;
      }
      throw err;
    }
  }

  /** POST /tasks/:id/retry or /cancel. */
  transition(id, action) {
    return this.json(`/tasks/${encodeURIComponent(id)}/${action}`, { method: "POST" });
  }

  /**
   * An object URL of the task's thumbnail or image (the api answers 302 to a signed URL, which
   * an <img> cannot reach with the key), or null when the task has none.
   */
  async blobUrl(id, which) {
    const res = await this.raw(`/tasks/${encodeURIComponent(id)}/${which}`);
    if (!res.ok) {
      await res.body?.cancel();
      return null;
    }
    return URL.createObjectURL(await res.blob());
  }
}
