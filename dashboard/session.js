/**
 * @module dashboard/session — the signed-in user, through supabase-js (the bundled
 * supabase_js.js): anonymous or email + password sign-in against the project's Auth (locally the
 * platform's development sign-in at /auth/v1), and the Realtime channel of that user's tasks.
 */
import { createClient } from "./supabase_js.js";

/**
 * The Supabase URL of an api base: the part before /functions/v1.
 * @param {string} apiBase e.g. http://127.0.0.1:54321/functions/v1/api
 */
export function supabaseUrlOf(apiBase) {
  const url = new URL(apiBase);
  const at = url.pathname.indexOf("/functions/v1");
  url.pathname = at >= 0 ? url.pathname.slice(0, at) : "/";
  url.search = "";
  url.hash = "";
  return url.toString().replace(/\/+$/, "");
}

/** A supabase-js client for `url` with the project's key (anon JWT or sb_publishable_…). */
export function createSupabase(url, projectKey) {
  return createClient(url, projectKey, {
    auth: {
      persistSession: true,
      autoRefreshToken: true,
      detectSessionInUrl: false,
      storageKey: "darkroom.auth",
    },
  });
}

/**
 * Follows the Broadcast topic `user:<userId>` (every event and state change of that user's
 * tasks) until `signal` aborts. `onTask(taskId, event)` hears each message; `onState` hears
 * "live", "offline" and "error"; `onRejoin()` runs each time the channel joins again after a
 * drop, so the caller can refetch what it missed.
 * @param {any} supabase
 * @param {string} userId
 * @param {{signal: AbortSignal, onTask: (taskId: string, event: string) => void,
 *   onState: (state: string, detail?: string) => void, onRejoin: () => void}} opts
 */
export function followRealtime(supabase, userId, opts) {
  let joined = false;
  let dropped = false;
  const channel = supabase.channel(`user:${userId}`, { config: { private: true } })
    .on("broadcast", { event: "*" }, (msg) => {
      const taskId = msg?.payload?.taskId;
      if (typeof taskId === "string") opts.onTask(taskId, msg.event);
    })
    .subscribe((status, err) => {
      if (opts.signal.aborted) return;
      if (status === "SUBSCRIBED") {
        opts.onState("live", "live (Realtime)");
        if (joined && dropped) opts.onRejoin();
        joined = true;
        dropped = false;
      } else {
        dropped = true;
        opts.onState("offline", `Realtime ${status.toLowerCase()}${err ? `: ${err.message}` : ""}`);
      }
    });
  opts.signal.addEventListener("abort", () => supabase.removeChannel(channel), { once: true });
  return channel;
}
