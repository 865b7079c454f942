/**
 * @module compute/pool — the local platform's {@linkcode ImageCompute}: a few Web Workers that
 * run the stages' CPU-heavy calls off the event loop serving HTTP and Realtime, each call under
 * a hard deadline. A call past it has its worker terminated (the only way to stop synchronous
 * code) and fails with a retryable `timeout`, so the stage runner retries it, then fails the task.
 */
import type { Analysis, AnalysisInput } from "../../shared/ai/types.ts";
import type { ExtractCallOptions, ExtractResult, ImageCompute } from "../../shared/compute.ts";
import { StageError } from "../../shared/errors.ts";
import { type ComputeReply, type ComputeRequest, deserializeError } from "./protocol.ts";

/** Options of {@linkcode ComputePool}. */
export interface ComputePoolOptions {
  /** Workers at most (COMPUTE_WORKERS). Default 1. */
  size?: number;
  /** Hard deadline of one call once a worker runs it, in ms (COMPUTE_DEADLINE_MS). Default 10000. */
  deadlineMs?: number;
}

/** Distributes `Omit` over a union, so each request keeps its own fields. */
type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

interface Call {
  req: ComputeRequest;
  transfer: Transferable[];
  resolve(value: unknown): void;
  reject(error: Error): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface Slot {
  worker: Worker;
  /** Its modules are loaded: a call's deadline then measures the call alone. */
  ready: boolean;
  call?: Call;
  timer?: ReturnType<typeof setTimeout>;
}

const WORKER_URL = new URL("./worker.ts", import.meta.url);

/**
 * A pool of Web Workers running {@linkcode ImageCompute} calls. Workers start on first use; a
 * call waits for an idle, loaded one (its deadline starts when a worker takes it). `stop()`
 * terminates every worker and fails what is still pending.
 *
 * @example
 * const pool = new ComputePool({ size: 1, deadlineMs: 10_000 });
 * const { extracted } = await pool.extract(bytes, { maxPixels: 100_000_000 });
 * pool.stop();
 */
export class ComputePool implements ImageCompute {
  readonly size: number;
  readonly deadlineMs: number;
  readonly #slots = new Set<Slot>();
  readonly #queue: Call[] = [];
  #nextId = 1;
  #stopped = false;

  constructor(opts: ComputePoolOptions = {}) {
    this.size = Math.max(1, Math.floor(opts.size ?? 1));
    this.deadlineMs = opts.deadlineMs ?? 10_000;
  }

  extract(bytes: Uint8Array, opts: ExtractCallOptions): Promise<ExtractResult> {
    const copy = ownedCopy(bytes);
    return this.#submit<ExtractResult>(
      { op: "extract", bytes: copy, maxPixels: opts.maxPixels },
      [copy.buffer],
      opts.signal,
    );
  }

  analyzeLocal(input: AnalysisInput): Promise<Analysis> {
    const { signal, ...rest } = input;
    const copy = ownedCopy(input.bytes);
    return this.#submit<Analysis>(
      { op: "analyzeLocal", input: { ...rest, bytes: copy } },
      [copy.buffer],
      signal,
    );
  }

  /** Terminates every worker; pending and later calls fail with a retryable error. */
  stop(): void {
    this.#stopped = true;
    const error = stoppedError();
    for (const slot of [...this.#slots]) this.#kill(slot, error);
    for (const call of this.#queue.splice(0)) {
      detach(call);
      call.reject(error);
    }
  }

  #submit<T>(
    req: WithoutId<ComputeRequest>,
    transfer: Transferable[],
    signal?: AbortSignal,
  ): Promise<T> {
    if (this.#stopped) return Promise.reject(stoppedError());
    if (signal?.aborted) return Promise.reject(abortedError(signal));
    return new Promise<T>((resolve, reject) => {
      const call: Call = {
        req: { ...req, id: this.#nextId++ } as ComputeRequest,
        transfer,
        resolve: (value) => resolve(value as T),
        reject,
        signal,
      };
      if (signal) {
        call.onAbort = () => this.#abort(call);
        signal.addEventListener("abort", call.onAbort, { once: true });
      }
      this.#queue.push(call);
      this.#dispatch();
    });
  }

  #dispatch(): void {
    if (this.#stopped) return;
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) break;
      if (slot.ready && !slot.call) this.#run(slot, this.#queue.shift()!);
    }
    // Workers still loading their modules take the next calls once ready: start more only for
    // the calls beyond those.
    let loading = [...this.#slots].filter((s) => !s.ready).length;
    while (this.#queue.length > loading && this.#slots.size < this.size) {
      this.#spawn();
      loading++;
    }
  }

  #run(slot: Slot, call: Call): void {
    slot.call = call;
    slot.timer = setTimeout(() => this.#kill(slot, this.#deadlineError()), this.deadlineMs);
    slot.worker.postMessage(call.req, call.transfer);
  }

  #spawn(): void {
    const worker = new Worker(WORKER_URL, { type: "module" });
    const slot: Slot = { worker, ready: false };
    worker.onmessage = (event: MessageEvent<ComputeReply>) => this.#reply(slot, event.data);
    worker.onmessageerror = () => {
      this.#kill(
        slot,
        new Error("Cannot process image: the compute worker's answer was unreadable"),
      );
    };
    worker.onerror = (event) => {
      // Unhandled, a worker's error would be re-thrown in this thread and end the process.
      event.preventDefault();
      this.#kill(
        slot,
        new Error(`Cannot process image: the compute worker failed: ${event.message}`),
      );
    };
    this.#slots.add(slot);
  }

  #reply(slot: Slot, reply: ComputeReply): void {
    if (!this.#slots.has(slot)) return;
    if ("ready" in reply) {
      slot.ready = true;
      this.#dispatch();
      return;
    }
    const call = slot.call;
    if (!call || reply.id !== call.req.id) return;
    this.#release(slot);
    if (reply.ok) call.resolve(reply.result);
    else call.reject(deserializeError(reply.error));
    this.#dispatch();
  }

  /** Frees the slot for the next call; the call it ran is returned, listeners removed. */
  #release(slot: Slot): Call | undefined {
    clearTimeout(slot.timer);
    slot.timer = undefined;
    const call = slot.call;
    slot.call = undefined;
    if (call) detach(call);
    return call;
  }

  /** Terminates the slot's worker (the only way to stop synchronous code) and fails its call. */
  #kill(slot: Slot, error: Error): void {
    if (!this.#slots.delete(slot)) return;
    slot.worker.terminate();
    const call = this.#release(slot);
    call?.reject(error);
    if (this.#stopped) return;
    if (!slot.ready && this.#queue.length > 0) {
      // It failed while loading: the call waiting for it fails too, so a worker that cannot
      // start costs each call one try, not an endless loop of restarts.
      const next = this.#queue.shift()!;
      detach(next);
      next.reject(error);
    }
    // The replacement loads its modules now, so the next call does not wait for that.
    if (call) this.#spawn();
    this.#dispatch();
  }

  #abort(call: Call): void {
    const queued = this.#queue.indexOf(call);
    if (queued >= 0) {
      this.#queue.splice(queued, 1);
      detach(call);
      call.reject(abortedError(call.signal));
      return;
    }
    for (const slot of this.#slots) {
      if (slot.call === call) this.#kill(slot, abortedError(call.signal));
    }
  }

  #deadlineError(): StageError {
    return new StageError(
      "timeout",
      `Cannot process image: over the ${this.deadlineMs} ms CPU deadline`,
      true,
    );
  }
}

/**
 * A copy of `bytes` in a buffer of its own, transferred to the worker: the caller's array stays
 * usable (a store may hand out cached bytes) and the copy is not copied again on the way.
 */
function ownedCopy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

function detach(call: Call): void {
  if (call.onAbort) call.signal?.removeEventListener("abort", call.onAbort);
  call.onAbort = undefined;
}

function stoppedError(): StageError {
  return new StageError("internal", "Cannot process image: the compute pool is stopped", true);
}

function abortedError(signal: AbortSignal | undefined): StageError {
  return new StageError("timeout", "Cannot process image: aborted", true, {
    cause: signal?.reason,
  });
}
