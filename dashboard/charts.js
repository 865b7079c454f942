/**
 * @module dashboard/charts — three small SVG charts from GET /stats, redrawn every few seconds:
 * throughput (tasks created, completed and failed in the last minute, one point per sample),
 * queue depths (every queue for the service role, else the caller's queued and processing
 * tasks) and per-stage latency (p50 and p95 bars). Drawn by this code: no chart library.
 */
import { formatDuration } from "./model.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 300;
const H = 110;
const SAMPLES = 60;
const REFRESH_MS = 5000;

/** Creates an SVG element with attributes and children. */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/**
 * Points of a line through `values` scaled into the chart (pure, for the polyline).
 * @param {number[]} values
 * @param {number} max
 * @param {number} slots how many samples the width holds
 */
export function linePoints(values, max, slots = SAMPLES) {
  const step = (W - 30) / Math.max(1, slots - 1);
  const start = 30 + (slots - values.length) * step;
  return values.map((v, i) =>
    `${(start + i * step).toFixed(1)},${(H - 15 - (max > 0 ? v / max : 0) * (H - 25)).toFixed(1)}`
  ).join(" ");
}

/**
 * The queue bars to draw from a stats answer: every queue for the service role, else the
 * caller's own tasks waiting and running.
 * @returns {{label: string, value: number}[]}
 */
export function queueBars(stats) {
  if (stats.queues) {
    return Object.entries(stats.queues).map(([label, q]) => ({ label, value: q.length }));
  }
  return ["queued", "processing"].map((label) => ({ label, value: stats.tasks?.[label] ?? 0 }));
}

function drawThroughput(card, samples) {
  const svg = card.querySelector("svg");
  const series = ["created", "completed", "failed"];
  const max = Math.max(1, ...samples.flatMap((x) => series.map((k) => x[k])));
  svg.replaceChildren(
    s("line", { class: "axis", x1: 30, y1: H - 15, x2: W, y2: H - 15 }),
    s("text", { x: 0, y: 12 }, max),
    s("text", { x: 0, y: H - 15 }, 0),
    ...series.map((k) =>
      s("polyline", {
        class: `line-${k}`,
        "data-series": k,
        points: linePoints(samples.map((x) => x[k]), max),
      })
    ),
  );
  const last = samples.at(-1);
  card.querySelector(".legend").textContent = last
    ? `last minute: ${last.created} created, ${last.completed} completed, ${last.failed} failed · last hour: ${last.hourCompleted} completed`
    : "";
}

function drawBars(card, bars, format = String) {
  const svg = card.querySelector("svg");
  const max = Math.max(1, ...bars.map((b) => b.value));
  const rowH = Math.min(22, (H - 5) / Math.max(1, bars.length));
  svg.replaceChildren(
    ...bars.flatMap((b, i) => {
      const y = 2 + i * rowH;
      const w = ((W - 150) * b.value) / max;
      return [
        s("text", { x: 0, y: y + rowH * 0.65 }, b.label.slice(0, 22)),
        s("rect", {
          class: "bar",
          "data-label": b.label,
          "data-value": b.value,
          x: 110,
          y,
          width: Math.max(1, w).toFixed(1),
          height: rowH - 4,
        }),
        s("text", { x: 114 + w, y: y + rowH * 0.65 }, format(b.value)),
      ];
    }),
  );
}

/** Stages in the pipeline's order (as /stats lists them, or the known ones), "total" last. */
export function latencyRows(stages) {
  const order = ["download", "metadata", "ai"];
  const rank = (k) => k === "total" ? 1e9 : order.includes(k) ? order.indexOf(k) : order.length;
  return Object.entries(stages ?? {}).sort(([a], [b]) => rank(a) - rank(b));
}

function drawLatency(card, stats) {
  const svg = card.querySelector("svg");
  const stages = latencyRows(stats.stages);
  const max = Math.max(1, ...stages.map(([, l]) => l.p95Ms));
  const rowH = Math.min(26, (H - 5) / Math.max(1, stages.length));
  svg.replaceChildren(
    ...stages.flatMap(([stage, l], i) => {
      const y = 2 + i * rowH;
      const w95 = ((W - 170) * l.p95Ms) / max;
      const w50 = ((W - 170) * l.p50Ms) / max;
      return [
        s("text", { x: 0, y: y + rowH * 0.6 }, stage),
        s("rect", {
          class: "bar p95",
          "data-stage": stage,
          x: 70,
          y,
          width: Math.max(1, w95).toFixed(1),
          height: rowH - 6,
        }),
        s("rect", {
          class: "bar",
          "data-stage": stage,
          x: 70,
          y,
          width: Math.max(1, w50).toFixed(1),
          height: rowH - 6,
        }),
        s(
          "text",
          { x: 74 + w95, y: y + rowH * 0.6 },
          `${formatDuration(l.p50Ms)} / ${formatDuration(l.p95Ms)}`,
        ),
      ];
    }),
  );
  card.querySelector(".legend").textContent = stages.length
    ? `${stages.reduce((n, [, l]) => Math.max(n, l.count), 0)} measured`
    : "No stage has run yet.";
}

/**
 * The AI spend card's lines from /stats' aiSpend (absent when no metered provider is configured):
 * provider calls made and saved by reuse, the newest day's tokens and cost, budget use, bucket levels.
 * @param {any} stats @returns {string[]}
 */
export function aiSpendLines(stats) {
  const a = stats?.aiSpend;
  if (!a) return ["No metered AI provider: the local provider costs nothing."];
  const latest = a.days?.[0]; // newest UTC day with calls
  const usd = (n) => `$${Number(n).toFixed(4)}`;
  const lines = [
    `${a.callsMade} provider calls, ${a.callsSavedByReuse} saved by reuse`,
    latest
      ? `${latest.day}: ${latest.totalTokens} tokens, ${usd(latest.usd)}`
      : "no calls in the last 7 days",
  ];
  const b = a.budget;
  if (b) {
    const cap = [
      b.dailyTokens === null ? null : `${b.spentTokens} / ${b.dailyTokens} tokens`,
      b.dailyUsd === null ? null : `${usd(b.spentUsd)} / ${usd(b.dailyUsd)}`,
    ].filter(Boolean);
    lines.push(`budget (${b.scope}): ${cap.length ? cap.join(", ") : "no daily cap"}`);
  }
  for (const k of a.buckets ?? []) {
    lines.push(
      `${k.provider}/${k.model} ${k.kind}: ${Math.floor(k.level)} of ${k.capacity}` +
        (k.blockedUntil ? `, blocked until ${k.blockedUntil}` : ""),
    );
  }
  return lines;
}

/**
 * Polls GET /stats with `api` until `signal` aborts and draws the charts (in #chart-throughput,
 * #chart-queues and #chart-latency). Errors show in each chart's legend; `onError` hears them
 * too (a refused key shows first here, before any task is listed).
 * @param {any} api @param {AbortSignal} signal @param {(err: any) => void} [onError]
 */
export function startStats(api, signal, onError) {
  const cards = {
    throughput: document.getElementById("chart-throughput"),
    queues: document.getElementById("chart-queues"),
    latency: document.getElementById("chart-latency"),
    ai: document.getElementById("chart-ai"),
  };
  const samples = [];
  const tick = async () => {
    if (signal.aborted) return;
    try {
      const stats = await api.stats();
      if (signal.aborted) return;
      const m = stats.throughput.lastMinute;
      samples.push({
        created: m.created,
        completed: m.completed,
        failed: m.failed,
        hourCompleted: stats.throughput.lastHour.completed,
      });
      if (samples.length > SAMPLES) samples.shift();
      drawThroughput(cards.throughput, samples);
      const bars = queueBars(stats);
      drawBars(cards.queues, bars);
      cards.queues.querySelector(".legend").textContent = stats.queues
        ? "messages in each queue"
        : "your tasks waiting and running";
      drawLatency(cards.latency, stats);
      if (cards.ai) {
        cards.ai.querySelector("ul").replaceChildren(
          ...aiSpendLines(stats).map((line) => {
            const li = document.createElement("li");
            li.textContent = line;
            return li;
          }),
        );
      }
      for (const c of Object.values(cards)) if (c) c.dataset.state = "ok";
    } catch (err) {
      if (signal.aborted) return;
      onError?.(err);
      for (const c of Object.values(cards)) {
        if (!c) continue;
        c.dataset.state = "error";
        c.querySelector(".legend").textContent = `Cannot load /stats: ${err.message}`;
      }
    }
    if (!signal.aborted) setTimeout(tick, REFRESH_MS);
  };
  tick();
}
