/**
 * @module scheduler — stands in for pg_cron + pg_net: calls each worker function's handler,
 * in-process, with the service_role key. A worker that found work is called again at once
 * (draining its queue); an idle one is polled every `idlePollMs` or woken sooner.
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
}

/** Options of {@linkcode Scheduler}. */
export interface SchedulerOptions {
  workers: ScheduledWorker[];
  serviceRoleKey: string;
  log: Logger;
  /** Poll interval of an idle worker, in ms. Default 200 (pickup latency stays under 250 ms). */
  idlePollMs?: number;
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
    while (this.#running) {
      let delay = idle;
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
          continue; // drain: there may be more
        }
      } catch (err) {
        this.#opts.log.error("worker invocation threw", { worker: w.name, err });
        delay = this.#opts.errorBackoffMs ?? 1000;
      }
      if (!this.#running) break;
      if (this.#pending.delete(loop)) continue;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#wakers.delete(loop);
          this.#pending.delete(loop);
          resolve();
        };
        const timer = setTimeout(done, delay);
        this.#wakers.set(loop, done);
      });
    }
  }
}
