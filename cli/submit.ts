/**
 * @module cli/submit — `deno task submit <url… | file of URLs | folder of images>`: submits the
 * images in batches, follows each task live on the event stream (polling GET /tasks/:id when the
 * stream fails), prints a summary and exits 1 when any task did not complete.
 *
 * @example
 * DARKROOM_KEY=<key> deno task submit https://example.com/a.jpg ./photos/
 */
import { parseSubmitArgs, SubmitOptions, USAGE, UsageError } from "./args.ts";
import {
  ApiCallError,
  DarkroomClient,
  FINAL_STATUSES,
  type StreamEvent,
  type Task,
} from "./client.ts";
import { resolveInputs } from "./inputs.ts";
import { labelOf, MILESTONES, progressLines, summaryTable, type TaskProgress } from "./render.ts";

/** Most per-task streams opened at once; more tasks with the anon key are polled. */
const MAX_TASK_STREAMS = 10;
/** How often unfinished tasks are polled. */
const POLL_MS = 500;

/** How often unfinished tasks are read while the stream is followed. */
const SAFETY_NET_MS = 10_000;

const POLL_FRACTION: Record<string, number> = { download: 0.15, metadata: 0.45, ai: 0.8 };

/** Follows `ids` until each is final or `deadline`; returns the tasks as last read. */
async function follow(
  client: DarkroomClient,
  ids: string[],
  progress: Map<string, TaskProgress>,
  opts: { poll: boolean; deadline: number; onChange: () => void },
): Promise<Task[]> {
  const finals = new Map<string, Task>();
  const done = new AbortController();
  const finish = async (taskId: string) => {
    if (finals.has(taskId)) return;
    const task = await client.getTask(taskId);
    if (!FINAL_STATUSES.has(task.status) || finals.has(taskId)) return;
    finals.set(taskId, task);
    const p = progress.get(taskId)!;
    p.fraction = 1;
    p.state = task.status + (task.error ? ` (${task.error.code})` : "");
    opts.onChange();
    if (finals.size === ids.length) done.abort();
  };
  const onEvent = (e: StreamEvent) => {
    const p = e.taskId ? progress.get(e.taskId) : undefined;
    if (!p || finals.has(e.taskId!)) return;
    const f = MILESTONES[e.eventType];
    if (f !== undefined && f >= 0) p.fraction = Math.max(p.fraction, f);
    p.state = e.eventType;
    opts.onChange();
    if (f === 1) finish(e.taskId!).catch(() => {/* the poll picks it up */});
  };
  const poll = async () => {
    while (!done.signal.aborted && Date.now() < opts.deadline) {
      for (const id of ids.filter((id) => !finals.has(id))) {
        const task = await client.getTask(id).catch(() => null);
        if (!task) continue;
        if (FINAL_STATUSES.has(task.status)) {
          await finish(id);
        } else {
          const p = progress.get(id)!;
          p.fraction = Math.max(p.fraction, task.stage ? POLL_FRACTION[task.stage] ?? 0 : 0.05);
          p.state = task.stage ? `${task.status}: ${task.stage}` : task.status;
          opts.onChange();
        }
      }
      await sleep(POLL_MS, done.signal);
    }
  };

  // A stream that stays open but goes quiet must not hang the run: now and then, read the
  // unfinished tasks once.
  const safetyNet = async () => {
    while (!done.signal.aborted) {
      await sleep(SAFETY_NET_MS, done.signal);
      for (const id of ids) if (!done.signal.aborted) await finish(id).catch(() => {});
    }
  };
  const timer = setTimeout(() => done.abort(), Math.max(0, opts.deadline - Date.now()));
  try {
    const streamed = opts.poll ? null : openStreams(client, ids, onEvent, done.signal);
    if (streamed) {
      await Promise.all([
        streamed.catch(async () => {
          if (!done.signal.aborted) await poll(); // the stream failed: fall back to polling
        }),
        safetyNet(),
      ]);
    } else {
      await poll();
    }
  } finally {
    clearTimeout(timer);
    done.abort();
  }
  const last: Task[] = [];
  for (const id of ids) last.push(finals.get(id) ?? await client.getTask(id));
  return last;
}

/**
 * The event streams to follow `ids` on: the caller's own stream (from just before the first
 * task's task.created) for a signed-in user or the service role with several tasks; else one
 * `?taskId=` stream per task. Null when there are too many tasks for per-task streams.
 */
function openStreams(
  client: DarkroomClient,
  ids: string[],
  onEvent: (e: StreamEvent) => void,
  signal: AbortSignal,
): Promise<void> | null {
  const own = client.role === "authenticated" || client.role === "service_role";
  if (own && ids.length > 1) {
    return (async () => {
      // The first task's task.created is the oldest event of this run (one transaction per
      // batch, tasks inserted in input order): the caller's stream starts just before it.
      const first = await firstEventId(client, ids[0], signal);
      const lastEventId = String(Math.max(0, Number(first) - 1));
      await client.stream({ lastEventId }, onEvent, signal);
    })();
  }
  if (ids.length > MAX_TASK_STREAMS) return null;
  return Promise.all(ids.map((taskId) => client.stream({ taskId }, onEvent, signal))).then(
    () => {},
  );
}

async function firstEventId(client: DarkroomClient, taskId: string, signal: AbortSignal) {
  const abort = new AbortController();
  const both = AbortSignal.any([signal, abort.signal]);
  let id: string | undefined;
  await client.stream({ taskId, maxFailures: 3 }, (e) => {
    id ??= e.id;
    abort.abort();
  }, both);
  if (id === undefined) throw new Error("No event for the first task");
  return id;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(() => {
      signal.removeEventListener("abort", stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(t);
      resolve();
    };
    signal.addEventListener("abort", stop, { once: true });
  });
}

const encoder = new TextEncoder();
const write = (s: string) => Deno.stdout.writeSync(encoder.encode(s));

/** A live display: redrawn in place on a terminal, nothing until the summary otherwise. */
function display(progress: Map<string, TaskProgress>, tty: boolean) {
  let drawn = 0;
  let pending = false;
  const draw = () => {
    pending = false;
    const lines = progressLines([...progress.values()]);
    const up = drawn > 0 ? `\x1b[${drawn}F` : "";
    write(up + lines.map((l) => `\x1b[2K${l}`).join("\n") + "\n");
    drawn = lines.length;
  };
  return {
    onChange() {
      if (!tty || pending) return;
      pending = true;
      setTimeout(draw, 100);
    },
    end() {
      if (tty) draw();
    },
  };
}

/** Runs the command; resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  let options: SubmitOptions | null;
  try {
    options = parseSubmitArgs(args, Deno.env.toObject());
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`error: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (!options) {
    console.log(USAGE);
    return 0;
  }
  const client = new DarkroomClient(options.url, options.key);
  let inputs;
  try {
    inputs = await resolveInputs(options.inputs);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`error: ${err.message}`);
    return 2;
  }
  try {
    if (inputs.files.size > 0 && !isLoopback(options.url)) {
      console.error(
        `note: local images are served on 127.0.0.1; a Darkroom at ${options.url} cannot fetch them`,
      );
    }
    const ids = await client.submit(inputs.urls);
    const progress = new Map(ids.map((id, i): [string, TaskProgress] => [
      id,
      { label: labelOf(inputs.urls[i]), fraction: 0, state: "queued" },
    ]));
    const view = display(progress, !options.json && Deno.stdout.isTerminal());
    const tasks = await follow(client, ids, progress, {
      poll: options.poll,
      deadline: Date.now() + options.timeoutSeconds * 1000,
      onChange: view.onChange,
    });
    view.end();
    const ok = tasks.every((t) => t.status === "completed");
    if (options.json) {
      console.log(JSON.stringify({ ok, tasks }, null, 2));
    } else {
      console.log(summaryTable(tasks));
      const completed = tasks.filter((t) => t.status === "completed").length;
      console.log(`\n${completed}/${tasks.length} completed`);
    }
    if (tasks.some((t) => t.error?.code === "blocked_address")) {
      console.error(
        "hint: the platform refused a private/loopback address; run it with ALLOW_PRIVATE_NETWORK=true deno task start",
      );
    }
    return ok ? 0 : 1;
  } catch (err) {
    if (!(err instanceof ApiCallError)) throw err;
    if (options.json) {
      console.log(JSON.stringify({ ok: false, error: { code: err.code, message: err.message } }));
    }
    console.error(`error: ${err.message}`);
    return 2;
  } finally {
    await inputs.close();
  }
}

function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === "localhost" || host === "[::1]" || host.startsWith("127.");
}

if (import.meta.main) Deno.exit(await main(Deno.args));
