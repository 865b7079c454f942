/**
 * @module cli/render — what the CLI prints: progress bars (redrawn in place on a terminal,
 * ANSI only then) and the summary table. Pure: strings in, strings out.
 */
import type { Task } from "./client.ts";

/** How far along a task is, 0..1, by the last milestone seen. */
export const MILESTONES: Record<string, number> = {
  "task.created": 0.05,
  "task.retry_scheduled": -1, // keeps the fraction it had
  "image.downloaded": 1 / 3,
  "image.metadata_extracted": 2 / 3,
  "image.analyzed": 0.95,
  "task.completed": 1,
  "task.failed": 1,
  "task.cancelled": 1,
};

/** What the progress display knows of one task. */
export interface TaskProgress {
  label: string;
  fraction: number;
  state: string;
}

/** A bar of `width` cells for `fraction` (0..1). */
export function bar(fraction: number, width = 20): string {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${"#".repeat(full)}${"-".repeat(width - full)}]`;
}

/** The progress lines: one per task (at most `maxRows`), then the overall one. */
export function progressLines(tasks: TaskProgress[], maxRows = 20): string[] {
  const labelWidth = Math.min(32, Math.max(4, ...tasks.map((t) => t.label.length)));
  const lines = tasks.slice(0, maxRows).map((t) =>
    `${fit(t.label, labelWidth)} ${bar(t.fraction)} ${t.state}`
  );
  if (tasks.length > maxRows) lines.push(`… and ${tasks.length - maxRows} more`);
  const done = tasks.filter((t) => t.fraction >= 1).length;
  const overall = tasks.reduce((s, t) => s + t.fraction, 0) / Math.max(1, tasks.length);
  lines.push(`${fit("all", labelWidth)} ${bar(overall)} ${done}/${tasks.length} done`);
  return lines;
}

function fit(s: string, width: number): string {
  return s.length > width ? `…${s.slice(s.length - width + 1)}` : s.padEnd(width);
}

/** A short name for an image URL: its last path segment, else the host. */
export function labelOf(url: string): string {
  try {
    const u = new URL(url);
    const last = decodeURIComponent(u.pathname.split("/").filter(Boolean).at(-1) ?? "");
    return last || u.host;
  } catch {
    return url;
  }
}

/** `1.2 MB`-style size. */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "-";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Seconds from creation to completion (or last update), `1.4s`. */
export function duration(task: Task): string {
  const end = task.completedAt ?? task.updatedAt;
  const ms = Date.parse(end) - Date.parse(task.createdAt);
  return Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)}s` : "-";
}

/** "make model", without repeating the make when the model starts with it. */
export function cameraOf(task: Task): string {
  const make = task.image?.metadata?.make?.trim() ?? "";
  const model = task.image?.metadata?.model?.trim() ?? "";
  if (!make && !model) return "-";
  const brand = make.split(/\s+/)[0].toLowerCase();
  if (model.toLowerCase().startsWith(brand)) return model; // "NIKON CORPORATION", "NIKON D70"
  return [make, model].filter(Boolean).join(" ");
}

/** The summary table: one row per task, columns aligned. */
export function summaryTable(tasks: Task[]): string {
  const rows = [["IMAGE", "STATUS", "DURATION", "SIZE", "CAMERA", "TAGS / ERROR"]];
  for (const t of tasks) {
    const detail = t.error && t.status !== "completed"
      ? `${t.error.code}: ${t.error.message}`
      : (t.image?.analysis?.tags ?? []).join(", ") || "-";
    rows.push([
      labelOf(t.imageUrl),
      t.status,
      duration(t),
      formatBytes(t.image?.byteSize),
      cameraOf(t),
      detail,
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) =>
    r.map((cell, c) => c === r.length - 1 ? cell : cell.padEnd(widths[c])).join("  ")
  ).join("\n");
}
