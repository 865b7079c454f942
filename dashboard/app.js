/**
 * @module dashboard/app — the live dashboard: settings, sign-in, the submit form, the task list,
 * the detail panel and the trace, charts from /stats and a tag search, kept current without
 * reloads.
 *
 * A signed-in user (the sign-in box, supabase-js) lists their tasks page by page (GET /tasks)
 * and follows them through Realtime (Broadcast on `user:<id>`), refetching after a rejoin; a
 * user's JWT pasted as the key (or the service role) follows the api's event stream (SSE), which
 * resumes by sequence (Last-Event-ID) after a drop. The anon key cannot list tasks, so the page
 * follows the tasks it created (ids kept in localStorage), one stream per running task, and
 * polls the rest.
 */
import { Api, ApiError } from "./api.js";
import { elapsedMs, formatDuration, roleOfKey, TERMINAL, urlsOf } from "./model.js";
import { followSse } from "./sse.js";
import { createSupabase, followRealtime, supabaseUrlOf } from "./session.js";
import { startStats } from "./charts.js";
import {
  h,
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
/** Tasks per page of GET /tasks. */
const PAGE = 50;

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
  /** @type {{base: string, key: string} | null} */
  settings: null,
  /** supabase-js, when the key is a project key (anon or publishable): the sign-in. */
  supabase: null,
  authSubscription: null,
  /** The signed-in user's session, or null. */
  session: null,
  /** Who the page acts as: a user id, or "key". */
  identity: null,
  /** GET /tasks's cursor of the next page; null on the last (or in anon mode). */
  nextCursor: null,
  loadingPage: false,
  connectedAt: 0,
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
  $("api-base").value = base;
  $("api-key").value = key;
  return { base, key };
}

function storedIds() {
  return JSON.parse(localStorage.getItem(STORE.tasks) ?? "[]").filter((x) => typeof x === "string");
}

/** New settings: a new supabase-js client when the key is a project key, then connect. */
function applySettings(settings) {
  state.settings = settings;
  state.authSubscription?.unsubscribe();
  state.authSubscription = null;
  state.supabase = null;
  state.session = null;
  state.identity = null;
  if (settings.key && roleOfKey(settings.key) === "anon") {
    try {
      state.supabase = createSupabase(supabaseUrlOf(settings.base), settings.key);
    } catch (err) {
      showMessage(`Sign-in unavailable: ${err.message}`);
    }
  }
  renderAuth();
  if (!state.supabase) return connect();
  // INITIAL_SESSION comes at once (a saved session, or none), then SIGNED_IN, TOKEN_REFRESHED...
  const { data } = state.supabase.auth.onAuthStateChange((_event, session) => {
    // supabase-js holds a lock during the callback: act after it returns.
    setTimeout(() => onSession(session), 0);
  });
  state.authSubscription = data.subscription;
}

function onSession(session) {
  state.session = session ?? null;
  renderAuth();
  const identity = session?.user?.id ?? "key";
  if (identity === state.identity && state.api) {
    // A refreshed token of the same user: calls carry the new one; streams go on.
    if (session) state.api.key = session.access_token;
    return;
  }
  connect();
}

/** (Re)starts everything for the current key or session. */
function connect() {
  const { base, key } = state.settings;
  state.following?.abort();
  for (const c of state.taskStreams.values()) c.abort();
  state.taskStreams.clear();
  const token = state.session?.access_token ?? key;
  state.identity = state.session?.user?.id ?? "key";
  state.role = roleOfKey(token);
  $("key-role").textContent = key ? `acts as ${roleOfKey(key)}` : "";
  resetList();
  if (!token) {
    state.api = null;
    setLive("error", "no key");
    showMessage("Enter a key under Settings (the anon key, a publishable key or a user's JWT).");
    $("settings-box").open = true;
    return;
  }
  state.api = new Api(base, token, key);
  setLive("connecting", "connecting");
  state.following = new AbortController();
  state.connectedAt = Date.now();
  const signal = state.following.signal;
  hideMessage();
  startStats(state.api, signal, (err) => {
    if (err instanceof ApiError && err.status === 401) {
      setLive("error", "key refused");
      showMessage(`The api refused the key: ${err.message}. Check Settings or sign in.`);
    }
  });
  loadTags();
  if (state.role === "anon") {
    state.ids = storedIds();
    renderTasks();
    for (const id of state.ids) refreshTask(id);
    setLive("polling", "following your tasks");
    pollLoop(signal);
    return;
  }
  loadPage(null);
  if (state.supabase && state.session) {
    followRealtime(state.supabase, state.session.user.id, {
      signal,
      onTask: (id, event) => onTaskSignal(id, event, Date.now()),
      onState: (s, text) => setLive(s, text),
      onRejoin: () => refetch(),
    });
  } else {
    followAll(signal);
  }
}

function resetList() {
  state.ids = [];
  state.tasks.clear();
  state.nextCursor = null;
  for (const li of rows.values()) li.remove();
  rows.clear();
  renderTasks();
}

/** Loads a page of GET /tasks (the first when `cursor` is null) and appends what is new. */
async function loadPage(cursor) {
  const api = state.api;
  if (!api || state.loadingPage) return;
  state.loadingPage = true;
  renderListState();
  try {
    const page = await api.list(cursor, PAGE);
    if (api !== state.api) return;
    for (const t of page.tasks) {
      putTask(t);
      if (!state.ids.includes(t.taskId)) state.ids.push(t.taskId);
    }
    state.nextCursor = page.nextCursor;
    renderTasks();
    for (const t of page.tasks) loadThumb(t);
  } catch (err) {
    if (err instanceof ApiError && err.status === 0) setLive("offline", "offline");
    showMessage(`Cannot list tasks: ${err.message}`);
  } finally {
    state.loadingPage = false;
    renderListState();
  }
}

/** The first page of GET /tasks again, merged: tasks new to the list go on top. */
async function refetchTop() {
  const api = state.api;
  if (!api) return;
  try {
    const page = await api.list(null, PAGE);
    if (api !== state.api) return;
    const fresh = page.tasks.filter((t) => !state.ids.includes(t.taskId)).map((t) => t.taskId);
    for (const t of page.tasks) putTask(t);
    state.ids.unshift(...fresh);
    renderTasks();
    for (const t of page.tasks) loadThumb(t);
  } catch {
    // The next signal or reconnect tries again.
  }
}

let topTimer = null;
/** A signal came while the page was being fetched: its answer may predate it, so fetch again. */
let topAgain = false;
/**
 * News of tasks the list does not hold: one GET /tasks for all of them, at most every 500 ms,
 * so a burst of thousands of new tasks costs a few page loads, not a request per task.
 */
function scheduleTop() {
  if (topTimer) {
    topAgain = true;
    return;
  }
  topTimer = setTimeout(async () => {
    topAgain = false;
    await refetchTop();
    topTimer = null;
    if (topAgain) scheduleTop();
  }, 500);
}

/**
 * After a reconnect: the first page again (tasks created meanwhile go on top) and every task
 * still running, so a state change missed while away shows.
 */
async function refetch() {
  await refetchTop();
  for (const id of state.ids) {
    const t = state.tasks.get(id);
    if (t && !TERMINAL.has(t.status)) scheduleRefresh(id);
  }
}

/** The live badge. The live source's last state is kept, to show again after the browser's offline. */
function setLive(kind, text) {
  state.liveState = [kind, text];
  if (!navigator.onLine) return showLive("offline", "offline");
  showLive(kind, text);
}

function showLive(kind, text) {
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
  if (state.role === "anon") {
    localStorage.setItem(STORE.tasks, JSON.stringify(state.ids.slice(0, 200)));
  }
}

function addTask(id) {
  if (state.ids.includes(id)) return;
  state.ids.unshift(id);
  saveIds();
}

/** The cursor of the event stream, per identity (a user's sequence is theirs). */
function cursorKey() {
  return `${STORE.lastEventId}:${state.identity}`;
}

/** One stream of everything the caller may see, resuming from the id stored last time. */
function followAll(signal) {
  followSse({
    url: `${state.api.base}/events/stream`,
    headers: state.api.headers,
    lastEventId: localStorage.getItem(cursorKey()) ?? undefined,
    signal,
    onState: (s, detail) =>
      setLive(s, s === "live" ? "live" : `${s}${detail ? `: ${detail}` : ""}`),
    onMessage: (m) => {
      if (m.id) localStorage.setItem(cursorKey(), m.id);
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
  if (event.taskId) onTaskSignal(event.taskId, event.eventType, event.timestamp);
}

/**
 * Something happened to a task: refresh it. A task not listed yet comes in when new (created, or
 * any news since the page connected); older news of an unlisted task is history the list's pages
 * already hold (a stream replayed from the start must not list every task ever).
 */
function onTaskSignal(id, eventType, timestamp) {
  if (!state.ids.includes(id)) {
    if (state.role !== "anon") {
      // Listed users: the newest page brings it (and every other new task) in one call.
      if (eventType === "task.created" || timestamp >= state.connectedAt - 5000) scheduleTop();
      return;
    }
    if (eventType !== "task.created") return;
    addTask(id);
  }
  scheduleRefresh(id);
  if (eventType === "task.completed") scheduleTagsReload();
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

/**
 * Keeps the newest of two versions of a task. Answers can arrive out of order (two refreshes in
 * flight, a page fetched before a refresh): an older one must not overwrite a newer state.
 */
function putTask(task) {
  const have = state.tasks.get(task.taskId);
  if (have && Date.parse(have.updatedAt) > Date.parse(task.updatedAt)) return have;
  state.tasks.set(task.taskId, task);
  return task;
}

async function refreshTask(id) {
  if (!state.api) return;
  try {
    const task = putTask(await state.api.task(id));
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
  state.ids.forEach((id, i) => {
    let li = rows.get(id);
    if (!li) {
      li = document.createElement("li");
      li.addEventListener("click", () => select(id));
      rows.set(id, li);
    }
    const task = state.tasks.get(id);
    const thumb = state.thumbs.get(id)?.url ?? null;
    const selected = state.selected === id;
    // Only rows whose task, thumbnail or selection changed are drawn again (10k rows stay cheap).
    const drawn = li.drawn;
    if (task) {
      if (!drawn || drawn.task !== task || drawn.thumb !== thumb || drawn.selected !== selected) {
        renderRow(li, task, thumb, selected);
        li.drawn = { task, thumb, selected };
      }
    } else {
      renderPendingRow(li, id, id === problemId ? problem : undefined);
      li.drawn = null;
    }
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
  });
  renderListState();
}

/** The list's empty, loading and "more" states and its count. */
function renderListState() {
  const n = state.ids.length;
  $("tasks-loading").hidden = !(state.loadingPage && n === 0);
  $("tasks-empty").hidden = n > 0 || state.loadingPage || !state.api;
  $("tasks-more").hidden = !state.nextCursor;
  $("tasks-more").disabled = state.loadingPage;
  $("tasks-count").textContent = n ? `(${n}${state.nextCursor ? "+" : ""})` : "";
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

let tagsTimer = null;
function scheduleTagsReload() {
  if (tagsTimer) return;
  tagsTimer = setTimeout(() => {
    tagsTimer = null;
    loadTags();
  }, 1000);
}

/** Fills the tag search's suggestions from GET /tags. */
async function loadTags() {
  const api = state.api;
  if (!api) return;
  try {
    const { tags } = await api.tags();
    if (api !== state.api) return;
    $("tag-suggestions").replaceChildren(
      ...tags.map((t) => h("option", { value: t.tag }, `${t.tag} (${t.count})`)),
    );
  } catch {
    // Suggestions are a convenience: the search still works.
  }
}

async function searchTag(event) {
  event.preventDefault();
  const tag = $("tag-input").value.trim();
  const out = $("tag-results");
  const stateEl = $("tag-state");
  if (!tag || !state.api) return;
  stateEl.textContent = "searching…";
  out.replaceChildren();
  try {
    const { images, nextCursor } = await state.api.images(tag);
    stateEl.textContent = images.length === 0
      ? `No image tagged "${tag}".`
      : `${images.length}${nextCursor ? "+" : ""} tagged "${tag}"`;
    out.replaceChildren(...images.map((img) =>
      h(
        "li",
        {
          dataset: { taskId: img.taskId },
          title: img.tags.join(", "),
          onclick: () => {
            addTask(img.taskId);
            renderTasks();
            refreshTask(img.taskId).then(() => select(img.taskId));
          },
        },
        img.caption ?? img.taskId,
      )
    ));
  } catch (err) {
    stateEl.textContent = `Cannot search: ${err.message}`;
  }
}

/** The sign-in box: who is signed in, or the form. */
function renderAuth() {
  const box = $("auth-box");
  box.hidden = !state.supabase;
  const user = state.session?.user;
  $("auth-form").hidden = !!user;
  $("auth-signout").hidden = !user;
  $("auth-summary").textContent = user
    ? (user.is_anonymous ? "Signed in anonymously" : `Signed in: ${user.email}`)
    : "Sign in";
  box.dataset.signedIn = String(!!user);
  $("auth-state").textContent = user
    ? `User ${user.id}${user.is_anonymous ? " (anonymous)" : ""}: your tasks, live.`
    : "Not signed in: acting with the key under Settings.";
}

/** Runs a supabase-js auth call from the sign-in box, showing its error. */
async function authAction(fn) {
  const err = $("auth-error");
  err.hidden = true;
  if (!state.supabase) return;
  const { error } = await fn(state.supabase.auth).catch((e) => ({ error: e }));
  if (error) {
    err.textContent = error.message;
    err.hidden = false;
  } else {
    $("auth-box").open = false;
  }
}

function credentials() {
  return { email: $("auth-email").value.trim(), password: $("auth-password").value };
}

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
    $("settings-box").open = false;
    applySettings({ base, key });
  });
  $("submit").addEventListener("submit", submit);
  $("tag-form").addEventListener("submit", searchTag);
  $("tasks-more").addEventListener("click", () => loadPage(state.nextCursor));
  $("auth-form").addEventListener("submit", (e) => {
    e.preventDefault();
    authAction((auth) => auth.signInWithPassword(credentials()));
  });
  $("auth-signup").addEventListener(
    "click",
    () => authAction((auth) => auth.signUp(credentials())),
  );
  $("auth-anon").addEventListener("click", () => authAction((auth) => auth.signInAnonymously()));
  $("auth-signout").addEventListener("click", () => authAction((auth) => auth.signOut()));
  addEventListener("offline", () => showLive("offline", "offline"));
  addEventListener("online", () => {
    showLive(...(state.liveState ?? ["connecting", "back online"]));
    refetch();
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
  applySettings(settings);
}

main();
