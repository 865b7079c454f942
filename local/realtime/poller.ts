/**
 * @module realtime/poller — runs a task every `intervalMs` while it is started, or at once when
 * woken; never two runs at a time (a wake during a run makes one more run right after).
 */

/** A start/stop/wake loop around one async task, which must handle its own errors. */
export class Poller {
  readonly #task: () => Promise<void>;
  readonly #intervalMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | null = null;
  #again = false;
  #started = false;

  constructor(task: () => Promise<void>, intervalMs: number) {
    this.#task = task;
    this.#intervalMs = intervalMs;
  }

  /** Starts polling (no-op when started). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#schedule(0);
  }

  /** Stops polling; resolves once a run in progress has ended. */
  async stop(): Promise<void> {
    this.#started = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** Runs the task now (or right after the current run), when started. */
  wake(): void {
    if (!this.#started) return;
    if (this.#running) this.#again = true;
    else this.#schedule(0);
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#run(), delayMs);
  }

  #run(): void {
    this.#timer = undefined;
    this.#again = false;
    this.#running = this.#task().finally(() => {
      this.#running = null;
      if (this.#started) this.#schedule(this.#again ? 0 : this.#intervalMs);
    });
  }
}
