/**
 * @module log — one JSON line per thing that happened, with stable keys
 * (level, msg, traceId, taskId, stage, msgId, durationMs). Secrets never go in a field.
 */

/** Log levels, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Fields a line carries besides `level` and `msg`. */
export type LogFields = Record<string, unknown>;

/** A logger bound to some fields (a task, a stage); `child` adds more. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/** Where lines go; default console.log/console.error. */
export type LogSink = (line: string, level: LogLevel) => void;

const defaultSink: LogSink = (line, level) =>
  level === "error" || level === "warn" ? console.error(line) : console.log(line);

/**
 * Creates a logger writing JSON lines at `level` and above.
 *
 * @example
 * const log = createLogger("info").child({ traceId, taskId });
 * log.info("stage completed", { stage: "download", durationMs: 12 });
 */
export function createLogger(
  level: LogLevel = "info",
  bound: LogFields = {},
  sink: LogSink = defaultSink,
): Logger {
  const write = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (ORDER[lvl] < ORDER[level]) return;
    const line: LogFields = { ts: new Date().toISOString(), level: lvl, msg, ...bound, ...fields };
    if (line.err instanceof Error) line.err = { name: line.err.name, message: line.err.message };
    sink(JSON.stringify(line), lvl);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (fields) => createLogger(level, { ...bound, ...fields }, sink),
  };
}

/** A logger that drops everything (tests that don't look at logs). */
export const silentLogger: Logger = createLogger("error", {}, () => {});
