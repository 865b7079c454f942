/**
 * @module realtime/filter — the `filter` of a postgres_changes subscription, as the Realtime
 * server reads it: `column=op.value` conditions joined by commas (AND), with op one of eq, neq,
 * lt, lte, gt, gte, in (`in.(a,b,"c,d")`), values quoted PostgREST-style when they hold `,()`.
 * Values compare by the column's type: numbers as numbers, times as instants, uuids without case.
 */
import type { Column } from "./catalog.ts";

/** The operators supported. */
export const FILTER_OPS = ["eq", "neq", "lt", "lte", "gt", "gte", "in"] as const;

/** One of {@linkcode FILTER_OPS}. */
export type FilterOp = typeof FILTER_OPS[number];

/** One `column=op.value` condition; `values` has one entry except for `in`. */
export interface Condition {
  column: Column;
  op: FilterOp;
  values: string[];
}

/** A filter that cannot be used; the message is shown to the subscriber. */
export class FilterError extends Error {
  override readonly name = "FilterError";
}

/** Parses a filter against the table's columns; throws FilterError. */
export function parseFilter(filter: string, columns: Column[]): Condition[] {
  return splitTopLevel(filter).map((part) => {
    const m = /^([^=]+)=([a-z]+)\.(.*)$/s.exec(part.trim());
    if (!m) throw new FilterError(`Error parsing \`filter\` params: ${part}`);
    const [, name, op, raw] = m;
    const column = columns.find((c) => c.name === name);
    if (!column) throw new FilterError(`Column \`${name}\` does not exist in the table`);
    if (!(FILTER_OPS as readonly string[]).includes(op)) {
      throw new FilterError(`Filter operator \`${op}\` is not supported`);
    }
    if (op !== "in") return { column, op: op as FilterOp, values: [unquote(raw)] };
    const list = /^\((.*)\)$/s.exec(raw);
    if (!list) throw new FilterError(`Error parsing \`filter\` params: ${part}`);
    return { column, op: "in", values: list[1] === "" ? [] : splitTopLevel(list[1]).map(unquote) };
  });
}

/** Whether a change's record satisfies every condition (a null value satisfies none, as in SQL). */
export function matchesFilter(conditions: Condition[], record: Record<string, unknown>): boolean {
  return conditions.every(({ column, op, values }) => {
    const value = record[column.name];
    const results = values.map((v) => compare(column.type, value, v));
    if (op === "in") return results.some((c) => c === 0);
    const c = results[0];
    if (c === null) return false;
    switch (op) {
      case "eq":
        return c === 0;
      case "neq":
        return c !== 0;
      case "lt":
        return c < 0;
      case "lte":
        return c <= 0;
      case "gt":
        return c > 0;
      case "gte":
        return c >= 0;
    }
  });
}

const NUMERIC = new Set(["int2", "int4", "int8", "float4", "float8", "numeric", "oid"]);
const TIME = new Set(["timestamptz", "timestamp", "date"]);

/** Compares a record value with a filter value by the column type; null when incomparable. */
function compare(type: string, value: unknown, text: string): number | null {
  if (value === null || value === undefined) return null;
  if (NUMERIC.has(type)) return order(Number(value), Number(text));
  if (type === "bool") {
    const b = { true: 1, t: 1, false: 0, f: 0 }[text.toLowerCase()];
    return b === undefined ? null : order(value === true ? 1 : 0, b);
  }
  if (TIME.has(type)) {
    const c = order(Date.parse(String(value)), Date.parse(text));
    if (c !== null) return c;
  }
  const a = typeof value === "object" ? JSON.stringify(value) : String(value);
  return type === "uuid" ? order(a.toLowerCase(), text.toLowerCase()) : order(a, text);
}

function order<T extends number | string>(a: T, b: T): number | null {
  if (typeof a === "number" && (Number.isNaN(a) || Number.isNaN(b as number))) return null;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Splits on commas outside double quotes and parentheses. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\\" && quoted) i++;
    else if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === "(") depth++;
    else if (!quoted && ch === ")") depth--;
    else if (!quoted && depth === 0 && ch === ",") {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function unquote(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    return v.slice(1, -1).replace(/\\(.)/g, "$1");
  }
  return v;
}
