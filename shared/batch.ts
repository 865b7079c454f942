/**
 * @module batch — what the stage runner and the subscriber runner share: reading a batch from a
 * queue with a visibility timeout (archiving messages that lack their id), handling the claimed
 * messages with bounded concurrency, keeping a message hidden while its job runs, and giving
 * messages back when the worker stops.
 */
import type { Queryable } from "./db.ts";
import type { Logger } from "./log.ts";
import { Queue, type QueueMessage } from "./queue.ts";
import { isUuid } from "./uuid.ts";

/** A batch read from a queue: the usable messages, and how many were archived as malformed. */
export interface ReadBatch<T> {
  messages: QueueMessage<T>[];
  /** Messages read in all. */
  read: number;
  /** Messages archived because `idField` was not a UUID. */
  malformed: number;
}

/**
 * Reads up to `qty` messages from `queueName`, hidden for `vtSeconds`. A message whose
 * `idField` is not a UUID can never succeed (and would make the claim statement's uuid[] cast
 * fail for the whole batch): it is archived for inspection.
 */
export async function readBatch<T extends Record<string, unknown>>(
  db: Queryable,
  log: Logger,
  queueName: string,
  idField: keyof T & string,
  vtSeconds: number,
  qty: number,
): Promise<ReadBatch<T>> {
  const queue = new Queue<T>(db, queueName);
  const read = await queue.read(vtSeconds, qty);
  const messages = read.filter((m) => isUuid(m.message?.[idField]));
  for (const bad of read.filter((m) => !messages.includes(m))) {
    log.warn(`message without ${idField} archived`, { queue: queueName, msgId: bad.msgId });
    await queue.archive(bad.msgId);
  }
  return { messages, read: read.length, malformed: read.length - messages.length };
}

/** Runs `fn` over `items` with at most `limit` at once. */
export async function forEachLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(lanes);
}

/** A time budget: `signal` aborts after `ms`; `clear()` ends the timer once the work is done. */
export interface TimeoutSignal {
  signal: AbortSignal;
  clear(): void;
}

/**
 * AbortSignal.timeout(ms), with a timer that can be cleared. A pending AbortSignal.timeout
 * keeps its signal, and what listens to it (a fetch's abort handler, AbortSignal.any's
 * dependents), alive until it fires: at a hundred jobs a second with budgets of 30-60 s, that is
 * thousands of finished jobs' state held, and the heap grew with the backlog. Aborts with the
 * same TimeoutError DOMException.
 */
export function timeoutSignal(ms: number): TimeoutSignal {
  const ctl = new AbortController();
  const timer = setTimeout(
    () => ctl.abort(new DOMException("Signal timed out.", "TimeoutError")),
    ms,
  );
  return { signal: ctl.signal, clear: () => clearTimeout(timer) };
}

/** A message kept hidden while its job runs; see {@linkcode holdMessage}. */
export interface Hold {
  /** Stops extending; resolves once no extension is in flight (so none lands after it). */
  stop(): Promise<void>;
}

/**
 * Keeps message `msgId` of `queueName` hidden while its job runs: every `vtSeconds / 2` its
 * visibility is set to `vtSeconds` from now, so a job that outlives the read's visibility timeout
 * is not handed out twice. MUST be stopped (and awaited) before the job's outcome is recorded:
 * an extension landing after schedule_retry would override the retry's delay.
 */
export function holdMessage(
  db: Queryable,
  log: Logger,
  queueName: string,
  msgId: number,
  vtSeconds: number,
): Hold {
  const queue = new Queue(db, queueName);
  let stopped = false;
  let inFlight: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    inFlight = inFlight.then(async () => {
      if (stopped) return;
      try {
        const held = await queue.setVisibility(msgId, vtSeconds);
        log.debug("visibility extended", { queue: queueName, msgId, vtSeconds, held });
      } catch (err) {
        log.warn("cannot extend visibility", { queue: queueName, msgId, err });
      }
    });
  }, Math.max(vtSeconds * 500, 50));
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await inFlight;
    },
  };
}

/** Makes a held message visible at once, for another worker to take. */
export async function releaseMessage(
  db: Queryable,
  log: Logger,
  queueName: string,
  msgId: number,
): Promise<void> {
  try {
    await new Queue(db, queueName).setVisibility(msgId, 0);
    log.info("message released", { queue: queueName, msgId });
  } catch (err) {
    // Not fatal: the message comes back at its visibility timeout instead of now.
    log.warn("cannot release message", { queue: queueName, msgId, err });
  }
}

/** How a worker stops: what the runners read from their deps. */
export interface StopOptions {
  /**
   * Aborted when the worker is told to stop: it reads nothing more, gives back at once the
   * messages it has not started, and lets the jobs in flight run for `stopGraceMs`.
   */
  stopSignal?: AbortSignal;
  /** How long jobs in flight may run once stopped, in ms. Default 10000 (STOP_TIMEOUT_MS). */
  stopGraceMs?: number;
}

/** What {@linkcode runHeld} ends with. */
export type HeldOutcome<T> =
  | { kind: "done"; value: T }
  | { kind: "threw"; error: unknown }
  | { kind: "released" };

/**
 * Runs the job of a held message: keeps the message hidden while `job` runs
 * ({@linkcode holdMessage}). Once `stop.stopSignal` aborts, the job has `stop.stopGraceMs` left:
 * then the signal handed to `job` aborts, the message is given back at once and the job's outcome
 * is ignored whenever it arrives. Extension has stopped when this resolves.
 */
export async function runHeld<T>(
  held: { db: Queryable; log: Logger; queue: string; msgId: number; vtSeconds: number },
  stop: StopOptions,
  job: (deadline: AbortSignal | undefined) => Promise<T>,
): Promise<HeldOutcome<T>> {
  const hold = holdMessage(held.db, held.log, held.queue, held.msgId, held.vtSeconds);
  const deadline = stop.stopSignal ? new AbortController() : undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let passed: () => void = () => {};
  const given = new Promise<"released">((resolve) => passed = () => resolve("released"));
  const arm = () => {
    timer = setTimeout(() => {
      deadline?.abort(new DOMException("Stopped", "AbortError"));
      passed();
    }, stop.stopGraceMs ?? 10_000);
  };
  if (stop.stopSignal?.aborted) arm();
  else stop.stopSignal?.addEventListener("abort", arm, { once: true });
  const work: Promise<HeldOutcome<T>> = (async () => await job(deadline?.signal))().then(
    (value) => ({ kind: "done", value }),
    (error) => ({ kind: "threw", error }),
  );
  const first = await Promise.race([work, given]);
  stop.stopSignal?.removeEventListener("abort", arm);
  clearTimeout(timer);
  await hold.stop();
  if (first !== "released") return first;
  await releaseMessage(held.db, held.log, held.queue, held.msgId);
  held.log.warn("job still running at the stop deadline; message released, outcome ignored");
  return { kind: "released" };
}

/**
 * Group commit: `submit` hands one outcome to commit and resolves with its result. The first
 * goes at once; those submitted while a commit is in flight wait for it and then go together in
 * ONE call of `commitMany` (one transaction, one round trip). When that call fails, each of them
 * is committed on its own with `commitOne`, so one bad item costs only itself. Same-tick
 * submissions gather too: a commit starts on the next microtask.
 *
 * Not DataLoader: that gathers one tick and caches by key; here a commit in flight is the
 * window, and nothing is cached.
 */
export class GroupCommit<I, O> {
  readonly #commitMany: (items: I[]) => Promise<O[]>;
  readonly #commitOne: (item: I) => Promise<O>;
  #waiting: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  #busy = false;

  constructor(commitMany: (items: I[]) => Promise<O[]>, commitOne: (item: I) => Promise<O>) {
    this.#commitMany = commitMany;
    this.#commitOne = commitOne;
  }

  /** Commits `item` with the others waiting; resolves with its own result. */
  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (!this.#busy) {
        this.#busy = true;
        queueMicrotask(() => this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    while (this.#waiting.length > 0) {
      const group = this.#waiting;
      this.#waiting = [];
      if (group.length > 1) {
        try {
          const results = await this.#commitMany(group.map((w) => w.item));
          if (results.length !== group.length) {
            throw new Error(`group commit answered ${results.length} of ${group.length}`);
          }
          group.forEach((w, i) => w.resolve(results[i]));
          continue;
        } catch {
          // All or nothing failed: each on its own below, so the bad one fails alone.
        }
      }
      await Promise.all(group.map(async (w) => {
        try {
          w.resolve(await this.#commitOne(w.item));
        } catch (error) {
          w.reject(error);
        }
      }));
    }
    this.#busy = false;
  }
}
