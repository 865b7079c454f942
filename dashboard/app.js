/**
 * @module dashboard/app — the live dashboard: settings, the submit form, the task list, the
 * detail panel and the trace, kept current by the api's event stream without reloads.
 *
 * A user's JWT (or the service role) follows one stream of every event it may see; the anon key
 * cannot list others' tasks, so the page follows the tasks it created (their ids are kept in
 * localStorage), one stream per running task, and polls the rest.
 */
import { Api, ApiError } from "./api.js";
import { elapsedMs, formatDuration, roleOfKey, TERMINAL, urlsOf } from "./model.js";
import { followSse } from "./sse.js";
import {
  renderDeliveries,
  renderDetail,
  renderPendingRow,
  renderRow,
  renderTrace,
} from "./views.js";

const $ = (id) => document.getElementById(id);
const STORE = {
  base: "darkroom.apiBase",
  key: "darkroom.key",
  tasks: "darkroom.tasks",
  lastEventId: "darkroom.lastEventId",
};
/** Streams at once in anon mode: browsers open at most 6 connections to one HTTP/1.1 host. */
const MAX_TASK_STREAMS = 3;
const POLL_MS = 3000;

const state = {
  /** @type {Api | null} */
  api: null,
  role: "anon",
  /** Task ids, newest first. */
  ids: [],
  /** @type {Map<string, any>} */
  tasks: new Map(),
  /** @type {Map<string, {which: string, url: string | null}>} */
  thumbs: new Map(),
  selected: null,
  selectedImage: null,
  /** @type {AbortController | null} */
  following: null,
  /** Per-task streams in anon mode, and the last event id each saw. */
  taskStreams: new Map(),
  taskCursors: new Map(),
  refreshTimers: new Map(),
};

function loadSettings() {
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get("key");
  if (fromUrl) {
    localStorage.setItem(STORE.key, fromUrl);
    // The key stays out of the address bar and the history.
    params.delete("key");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
  }
  const injected = document.querySelector('meta[name="darkroom-default-key"]')?.content ?? "";
  const base = params.get("api") ?? localStorage.getItem(STORE.base) ??
    `${location.origin}/functions/v1/api`;
  const key = localStorage.getItem(STORE.key) || injected;
  state.ids = JSON.parse(localStorage.getItem(STORE.tasks) ?? "[]").filter((x) =>
    typeof x === "string"
  );
  $("api-base").value = base;
  $("api-key").value = key;
  return { base, key };
}

function applySettings({ base, key }) {
  state.following?.abort();
  for (const c of state.taskStreams.values()) c.abort();
  state.taskStreams.clear();
  state.role = roleOfKey(key);
  $("key-role").textContent = key ? `acts as ${state.role}` : "";
  if (!key) {
    state.api = null;
    setLive("error", "no key");
    showMessage("Enter a key under Settings (the anon key, a publishable key or a user's JWT).");
    $("settings-box").open = true;
    return;
  }
  state.api = new Api(base, key);
  state.following = new AbortController();
  hideMessage();
  for (const id of state.ids) refreshTask(id);
  if (state.role === "anon") {
    setLive("polling", "following your tasks");
    pollLoop(state.following.signal);
  } else {
    followAll(state.following.signal);
  }
}

function setLive(kind, text) {
  const el = $("live");
  el.dataset.state = kind;
  el.textContent = text ?? kind;
}

function showMessage(text, kind = "error") {
  const el = $("message");
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
}

function hideMessage() {
  $("message").hidden = true;
}

function saveIds() {
  localStorage.setItem(STORE.tasks, JSON.stringify(state.ids.slice(0, 200)));
}

function addTask(id) {
  if (state.ids.includes(id)) return;
  state.ids.unshift(id);
  saveIds();
}

/** One stream of everything the caller may see, resuming from the id stored last time. */
function followAll(signal) {
  followSse({
    url: `${state.api.base}/events/stream`,
    headers: state.api.headers,
    lastEventId: localStorage.getItem(STORE.lastEventId) ?? undefined,
    signal,
    onState: (s, detail) =>
      setLive(s, s === "live" ? "live" : `${s}${detail ? `: ${detail}` : ""}`),
    onMessage: (m) => {
      if (m.id) localStorage.setItem(STORE.lastEventId, m.id);
      onEvent(m);
    },
  });
}

/** Anon mode: a stream for each running task (up to MAX_TASK_STREAMS), the others polled. */
async function pollLoop(signal) {
  while (!signal.aborted) {
    const running = state.ids.filter((id) => {
      const t = state.tasks.get(id);
      return !t || !TERMINAL.has(t.status);
    });
    for (const [id, ctl] of state.taskStreams) {
      if (!running.includes(id)) {
        ctl.abort();
        state.taskStreams.delete(id);
      }
    }
    for (const id of running) {
      if (state.taskStreams.has(id)) continue;
      if (state.taskStreams.size >= MAX_TASK_STREAMS) {
        refreshTask(id);
        continue;
      }
      const ctl = new AbortController();
      signal.addEventListener("abort", () => ctl.abort(), { once: true });
      state.taskStreams.set(id, ctl);
      followSse({
        url: `${state.api.base}/events/stream?taskId=${encodeURIComponent(id)}`,
        headers: state.api.headers,
        lastEventId: state.taskCursors.get(id),
        signal: ctl.signal,
        onState: (s, detail) => {
          if (s === "live") setLive("live", "live");
          else if (s !== "connecting") setLive(s, `${s}${detail ? `: ${detail}` : ""}`);
        },
        onMessage: (m) => {
          if (m.id) state.taskCursors.set(id, m.id);
          onEvent(m);
        },
      }).finally(() => {
        if (state.taskStreams.get(id) === ctl) state.taskStreams.delete(id);
      });
    }
    if (running.length === 0) setLive("live", "live");
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function onEvent(message) {
  let event;
  try {
    event = JSON.parse(message.data);
  } catch {
    return;
  }
  const id = event.taskId;
  if (!id) return;
  if (!state.ids.includes(id)) {
    if (event.eventType !== "task.created" && state.role === "anon") return;
    addTask(id);
  }
  scheduleRefresh(id);
}

function scheduleRefresh(id) {
  if (state.refreshTimers.has(id)) return;
  state.refreshTimers.set(
    id,
    setTimeout(() => {
      state.refreshTimers.delete(id);
      refreshTask(id);
    }, 80),
  );
}

async function refreshTask(id) {
  if (!state.api) return;
  try {
    const task = await state.api.task(id);
    state.tasks.set(id, task);
    renderTasks();
    await loadThumb(task);
    if (state.selected === id) await showDetail(id);
  } catch (err) {
    if (err instanceof ApiError && err.status === 0) setLive("offline", "offline");
    state.tasks.set(id, state.tasks.get(id) ?? null);
    renderTasks(id, err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
  }
}

async function loadThumb(task) {
  const which = task.image?.thumbnail ? "thumbnail" : task.image ? "image" : null;
  if (!which) return;
  const have = state.thumbs.get(task.taskId);
  if (have && (have.which === which || have.which === "pending")) return;
  state.thumbs.set(task.taskId, { which: "pending", url: null });
  const url = await state.api.blobUrl(task.taskId, which).catch(() => null);
  if (have?.url) URL.revokeObjectURL(have.url);
  state.thumbs.set(task.taskId, { which, url });
  renderTasks();
}

const rows = new Map();

function renderTasks(problemId, problem) {
  const list = $("tasks");
  $("tasks-empty").hidden = state.ids.length > 0;
  state.ids.forEach((id, i) => {
    let li = rows.get(id);
    if (!li) {
      li = document.createElement("li");
      li.addEventListener("click", () => select(id));
      rows.set(id, li);
    }
    const task = state.tasks.get(id);
    if (task) renderRow(li, task, state.thumbs.get(id)?.url ?? null, state.selected === id);
    else renderPendingRow(li, id, id === problemId ? problem : undefined);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
  });
}

async function select(id) {
  state.selected = id;
  if (state.selectedImage) URL.revokeObjectURL(state.selectedImage.url);
  state.selectedImage = null;
  renderTasks();
  $("trace").hidden = false;
  $("trace-state").textContent = "loading…";
  $("trace-state").hidden = false;
  await showDetail(id);
}

async function showDetail(id) {
  const task = state.tasks.get(id);
  const panel = $("detail");
  if (!task) {
    panel.replaceChildren(document.createTextNode("loading…"));
    return;
  }
  if (task.image && !state.selectedImage) {
    state.selectedImage = { id, url: null };
    state.selectedImage.url = await state.api.blobUrl(id, "image").catch(() => null);
  }
  if (state.selected !== id) return;
  renderDetail(panel, task, state.selectedImage?.url ?? null, {
    retry: () => transition(id, "retry"),
    cancel: () => transition(id, "cancel"),
  });
  await showTrace(id);
}

async function showTrace(id) {
  const traceState = $("trace-state");
  try {
    const [events, deliveries] = await Promise.all([
      state.api.events(id),
      state.api.deliveries(id).catch(() => null),
    ]);
    if (state.selected !== id) return;
    traceState.hidden = events.length > 0;
    traceState.textContent = events.length ? "" : "No events yet.";
    renderTrace($("trace-events"), events);
    const table = $("deliveries");
    const dState = $("deliveries-state");
    if (deliveries === null) {
      table.hidden = true;
      dState.textContent = "This api lists no deliveries.";
    } else if (deliveries.length === 0) {
      table.hidden = true;
      dState.textContent = task(id)?.callbackUrl
        ? "No delivery attempts yet."
        : "No callbackUrl: nothing is delivered.";
    } else {
      table.hidden = false;
      dState.textContent = "";
      renderDeliveries(table.querySelector("tbody"), deliveries);
    }
  } catch (err) {
    traceState.hidden = false;
    traceState.textContent = `Cannot load the trace: ${err.message}`;
  }
}

const task = (id) => state.tasks.get(id);

async function transition(id, action) {
  try {
    await state.api.transition(id, action);
    hideMessage();
  } catch (err) {
    showMessage(`Cannot ${action}: ${err.message}`);
  }
  await refreshTask(id);
}

async function submit(event) {
  event.preventDefault();
  if (!state.api) return showMessage("Enter a key under Settings first.");
  const urls = urlsOf($("urls").value);
  const results = $("submit-results");
  const button = $("submit-button");
  button.disabled = true;
  results.replaceChildren();
  for (const url of urls) {
    const li = document.createElement("li");
    li.textContent = `${url}: submitting…`;
    results.append(li);
    try {
      const created = await state.api.createTask(url);
      li.dataset.ok = "true";
      li.dataset.taskId = created.taskId;
      li.textContent = `${url}: ${created.status} (${created.taskId})`;
      addTask(created.taskId);
      renderTasks();
      refreshTask(created.taskId);
    } catch (err) {
      li.dataset.ok = "false";
      li.textContent = `${url}: ${err.code ?? "error"}: ${err.message}`;
    }
  }
  button.disabled = false;
  if (results.querySelector('[data-ok="true"]')) $("urls").value = "";
}

function main() {
  const settings = loadSettings();
  $("settings").addEventListener("submit", (e) => {
    e.preventDefault();
    const base = $("api-base").value.trim();
    const key = $("api-key").value.trim();
    localStorage.setItem(STORE.base, base);
    localStorage.setItem(STORE.key, key);
    localStorage.removeItem(STORE.lastEventId);
    $("settings-box").open = false;
    applySettings({ base, key });
  });
  $("submit").addEventListener("submit", submit);
  addEventListener("offline", () => setLive("offline", "offline"));
  addEventListener("online", () => {
    for (const id of state.ids) refreshTask(id);
  });
  // Elapsed times of running tasks tick without a reload.
  setInterval(() => {
    for (const [id, li] of rows) {
      const t = task(id);
      const el = li.querySelector(".elapsed");
      if (t && el && !TERMINAL.has(t.status)) {
        el.textContent = formatDuration(elapsedMs(t, Date.now()));
      }
    }
  }, 1000);
  renderTasks();
  applySettings(settings);
}

main();
