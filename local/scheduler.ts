/**
 * @module scheduler — stands in for pg_cron + pg_net: calls each worker function's handler,
 * in-process, with the service_role key. A worker that read a full batch is called again at once
 * (draining its queue); one that read a short batch (its answer's `more: false`) waits for a
 * wake-up or the short poll; an idle one is polled every `idlePollMs`, backing off (doubling) up to
 * `maxIdlePollMs` while it keeps finding nothing, or woken sooner. Work started in this process
 * (the api queued a task, a stage handed on to the next, events were written) wakes its worker at
 * once; the poll only finds what nothing woke for: retries coming due, messages whose visibility
 * timeout ran out, and what other processes queued.
 */
import type { Logger } from "../shared/log.ts";

/** A worker to drive. */
export interface ScheduledWorker {
  name: string;
  handler: (req: Request) => Promise<Response>;
  /** Workers woken when this one made progress (the next stage). */
  wakes?: string[];
  /** Invocations of this worker kept running at once. Default 1. */
  concurrency?: number;
  /**
   * When woken, wait until this long after its previous invocation started (ms; default 0: at
   * once), so that what many wake-ups announce is read in one batch: the event subscribers are
   * woken after every stage batch.
   */
  wakeDelayMs?: number;
}

/** Options of {@linkcode Scheduler}. */
export interface SchedulerOptions {
  workers: ScheduledWorker[];
  serviceRoleKey: string;
  log: Logger;
  /** First poll interval of an idle worker, in ms. Default 200. */
  idlePollMs?: number;
  /**
   * Longest poll interval of a worker that keeps finding nothing, in ms. Default 1000: at most
   * one invocation a second per idle worker; a retry coming due waits at most that long.
   */
  maxIdlePollMs?: number;
  /** Wait after a failed invocation, in ms. Default 1000. */
  errorBackoffMs?: number;
  /** Told, with the worker's name, after any invocation that handled messages. */
  onProgress?: (worker: string) => void;
}

/** Drives the worker functions until stopped. */
export class Scheduler {
  readonly #opts: SchedulerOptions;
  /** Per loop (`name#i`): ends its wait now. */
  readonly #wakers = new Map<string, () => void>();
  /** Loops woken while busy: their next wait returns at once. */
  readonly #pending = new Set<string>();
  readonly #loops: Promise<void>[] = [];
  #running = false;

  constructor(opts: SchedulerOptions) {
    this.#opts = opts;
  }

  /** Starts one loop per worker. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    for (const w of this.#opts.workers) {
      for (let i = 0; i < Math.max(1, w.concurrency ?? 1); i++) {
        this.#loops.push(this.#loop(w, `${w.name}#${i}`));
      }
    }
  }

  /** Wakes the named workers (all when none named) now instead of at their next poll. */
  wake(...names: string[]): void {
    const wanted = names.length ? names : this.#opts.workers.map((w) => w.name);
    for (const w of this.#opts.workers) {
      if (!wanted.includes(w.name)) continue;
      for (let i = 0; i < Math.max(1, w.concurrency ?? 1); i++) {
        const loop = `${w.name}#${i}`;
        this.#pending.add(loop);
        this.#wakers.get(loop)?.();
      }
    }
  }

  /** Stops after the invocations in flight finish. */
  async stop(): Promise<void> {
    this.#running = false;
    this.wake();
    await Promise.all(this.#loops);
  }

  async #loop(w: ScheduledWorker, loop: string): Promise<void> {
    const idle = this.#opts.idlePollMs ?? 200;
    const maxIdle = Math.max(idle, this.#opts.maxIdlePollMs ?? 1000);
    let idleDelay = idle;
    let lastStart = 0;
    while (this.#running) {
      let delay = idleDelay;
      lastStart = performance.now();
      try {
        const res = await w.handler(
          new Request(`http://scheduler.local/${w.name}`, {
            method: "POST",
            headers: { authorization: `Bearer ${this.#opts.serviceRoleKey}` },
          }),
        );
        const body = await res.json();
        if (!res.ok) {
          this.#opts.log.warn("worker invocation failed", { worker: w.name, status: res.status });
          delay = this.#opts.errorBackoffMs ?? 1000;
        } else if (body.read > 0) {
          this.#opts.onProgress?.(w.name);
          for (const next of w.wakes ?? []) this.wake(next);
          idleDelay = idle;
          // Drain: a full batch says there may be more. A short one emptied the queue for now:
          // wait for news (a wake-up, or the short poll) instead of reading it empty again.
          if (body.more !== false) continue;
          delay = idle;
        } else {
          idleDelay = Math.min(maxIdle, idleDelay * 2); // nothing found: poll less often
        }
      } catch (err) {
        this.#opts.log.error("worker invocation threw", { worker: w.name, err });
        delay = this.#opts.errorBackoffMs ?? 1000;
      }
      if (!this.#running) break;
      if (this.#pending.delete(loop)) {
        idleDelay = idle;
        await this.#wakeDelay(w, lastStart);
        continue;
      }
      const woken = await new Promise<boolean>((resolve) => {
        const done = (byWake: boolean) => {
          clearTimeout(timer);
          this.#wakers.delete(loop);
          this.#pending.delete(loop);
          resolve(byWake);
        };
        const timer = setTimeout(() => done(false), delay);
        this.#wakers.set(loop, () => done(true));
      });
      // Woken: work is likely near; poll at the short interval again.
      if (woken) {
        idleDelay = idle;
        await this.#wakeDelay(w, lastStart);
      }
    }
  }

  /** Waits out `w.wakeDelayMs` since `lastStart` (not when stopping). */
  async #wakeDelay(w: ScheduledWorker, lastStart: number): Promise<void> {
    const left = (w.wakeDelayMs ?? 0) - (performance.now() - lastStart);
    if (left > 0 && this.#running) await new Promise((r) => setTimeout(r, left));
  }
}
