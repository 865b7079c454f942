/**
 * @module dashboard/views — builds the DOM of a task row, the detail panel and the trace. Text
 * goes in through textContent only: a caption or URL is data, never markup.
 */
import { elapsedMs, formatDuration, progressSegments, TERMINAL, traceRows } from "./model.js";

/** Creates an element: `h("li", {class: "x", dataset: {id}}, child, "text")`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Fills `li` (a row of the task list) from `task`; `thumb` is an object URL or null. */
export function renderRow(li, task, thumb, selected) {
  const segments = progressSegments(task);
  li.className = "task";
  li.dataset.taskId = task.taskId;
  li.dataset.status = task.status;
  li.setAttribute("aria-selected", String(selected));
  const img = h("img", { class: "thumb", alt: "", src: thumb ?? undefined });
  li.replaceChildren(
    img,
    h(
      "div",
      {},
      h("div", { class: "url", title: task.imageUrl }, task.imageUrl),
      h(
        "div",
        { class: "progress", title: segments.map((s) => `${s.stage}: ${s.state}`).join(", ") },
        segments.map((s) =>
          h("span", { class: "seg", dataset: { stage: s.stage, state: s.state } }, s.stage)
        ),
      ),
      task.error && task.status === "failed"
        ? h("div", { class: "error-code" }, task.error.code)
        : null,
    ),
    h(
      "div",
      {},
      h("div", { class: "status", dataset: { status: task.status } }, task.status),
      h("div", { class: "elapsed" }, formatDuration(elapsedMs(task, Date.now()))),
    ),
  );
}

/** A row for a task the api has not answered for yet (or no longer knows). */
export function renderPendingRow(li, id, problem) {
  li.className = "task";
  li.dataset.taskId = id;
  li.replaceChildren(
    h("span", { class: "thumb" }),
    h(
      "div",
      {},
      h("div", { class: "url" }, id),
      h("div", { class: "muted" }, problem ?? "loading…"),
    ),
    h("div", {}),
  );
}

/**
 * The detail panel of `task`. `actions.retry`/`actions.cancel` are called by its buttons;
 * `image` is an object URL of the stored image or null.
 */
export function renderDetail(panel, task, image, actions) {
  const meta = task.image?.metadata ?? {};
  const analysis = task.image?.analysis ?? null;
  const gps = meta.gps && typeof meta.gps.lat === "number"
    ? `${meta.gps.lat.toFixed(6)}, ${meta.gps.lon.toFixed(6)}`
    : "–";
  const camera = [meta.make, meta.model].filter(Boolean).join(" ") || "–";
  const dims = task.image?.width ? `${task.image.width} × ${task.image.height}` : "–";
  const rows = [
    ["Status", task.status + (task.stage ? ` (${task.stage})` : "")],
    ["Task", task.taskId],
    ["Trace", task.traceId],
    ["URL", task.imageUrl],
    ["Camera", camera],
    ["Taken", meta.takenAt ?? "–"],
    ["GPS", gps],
    ["Dimensions", dims],
    ["Format", task.image?.format ?? task.image?.contentType ?? "–"],
    ["Elapsed", formatDuration(elapsedMs(task, Date.now()))],
  ];
  const failed = task.status === "failed" && task.error;
  // replaceChildren() would write a null as the text "null": h() drops it.
  panel.replaceChildren(
    ...h(
      "div",
      {},
      h("h2", {}, "Task"),
      image ? h("img", { class: "full", src: image, alt: analysis?.caption ?? "the image" }) : null,
      h("dl", {}, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      analysis ? h("p", { class: "caption" }, analysis.caption) : null,
      analysis?.tags ? h("ul", { class: "tags" }, analysis.tags.map((t) => h("li", {}, t))) : null,
      task.error
        ? h(
          "p",
          { class: "error" },
          h("span", { class: "error-code" }, task.error.code),
          ` ${task.error.message}`,
          task.nextAttemptAt ? ` (retrying at ${task.nextAttemptAt})` : "",
        )
        : null,
      h(
        "div",
        { class: "actions" },
        failed
          ? h("button", { type: "button", class: "retry", onclick: actions.retry }, "Retry")
          : null,
        !TERMINAL.has(task.status)
          ? h("button", { type: "button", class: "cancel", onclick: actions.cancel }, "Cancel")
          : null,
      ),
    ).childNodes,
  );
}

/** The trace: one item per event with its offset, the gap before it and where it went. */
export function renderTrace(list, events) {
  list.replaceChildren(
    ...traceRows(events).map((r) =>
      h(
        "li",
        { dataset: { eventType: r.eventType } },
        h("span", { class: "at" }, `+${formatDuration(r.atMs)}`),
        h(
          "div",
          {},
          h("div", { class: "type" }, r.eventType),
          r.atMs > 0 || r.gapMs > 0
            ? h(
              "div",
              { class: "gap" },
              `gap ${formatDuration(r.gapMs)}`,
              r.stageMs !== null
                ? ` = stage ${formatDuration(r.stageMs)} + queue wait ${formatDuration(r.queueMs)}`
                : "",
            )
            : null,
          r.summary ? h("div", { class: "detail" }, r.summary) : null,
        ),
      )
    ),
  );
}

/** The deliveries table's body. */
export function renderDeliveries(tbody, deliveries) {
  tbody.replaceChildren(
    ...deliveries.map((d) =>
      h(
        "tr",
        { dataset: { status: d.status } },
        h("td", {}, d.eventType ?? "–"),
        h("td", {}, d.attempt),
        h("td", {}, d.status + (d.error ? `: ${d.error}` : "")),
        h("td", {}, d.responseStatus ?? "–"),
        h("td", {}, d.durationMs === null ? "–" : formatDuration(d.durationMs)),
        h("td", {}, new Date(d.createdAt).toLocaleTimeString()),
      )
    ),
  );
}
