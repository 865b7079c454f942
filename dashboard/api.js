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
  /** @param {string} base e.g. http://127.0.0.1:54321/functions/v1/api @param {string} key */
  constructor(base, key) {
    this.base = base.replace(/\/+$/, "");
    this.key = key;
  }

  /** The headers every call sends. */
  get headers() {
    const h = { authorization: `Bearer ${this.key}` };
    if (this.key.startsWith("sb_")) h.apikey = this.key;
    return h;
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
