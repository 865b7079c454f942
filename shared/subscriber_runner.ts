/**
 * @module subscriber_runner — the engine every event subscriber shares (tag indexer,
 * notifier, ...), the stage runner's twin: read a batch from the subscriber's queue with a
 * visibility timeout, claim it in one statement (darkroom.claim_events drops duplicates of
 * events already handled), handle the events with bounded concurrency, and commit each outcome
 * through the SQL functions: ack, retry with backoff, or archive with the error. A subscriber
 * never changes task state.
 */
import {
  forEachLimited,
  GroupCommit,
  readBatch,
  releaseMessage,
  runHeld,
  timeoutSignal,
} from "./batch.ts";
import { StageError } from "./errors.ts";
import type { INEvent } from "./events.ts";
import type { Logger } from "./log.ts";
import { decideRetry, type RetryDecision } from "./retry_policy.ts";
import type { RunnerDeps } from "./stage_runner.ts";

/** The message the fan-out sends a subscriber: ids only. */
export interface SubscriberMessage extends Record<string, unknown> {
  eventId: string;
  taskId: string | null;
  traceId: string;
  eventType: string;
}

/** One event being handled. */
export interface EventJob {
  msgId: number;
  /** Tries of this message so far, this one included (pgmq's read_ct). */
  attempt: number;
  /** MAX_ATTEMPTS: the last try is `attempt === maxAttempts`. */
  maxAttempts: number;
  event: INEvent;
  log: Logger;
  /** Aborted when the time budget of one event is spent, or at the deadline of a stop. */
  signal: AbortSignal;
}

/** What a subscriber is: its row in darkroom.subscriptions, who it is, and the work. */
export interface SubscriberDefinition {
  /** darkroom.subscriptions.name, e.g. `tag_indexer`. */
  subscriber: string;
  /** The worker function, e.g. `tag-indexer-worker` (logs and summaries). */
  source: string;
  /** Handles one event; resolves when its effect is committed. Throws StageError to retry. */
  handle(job: EventJob): Promise<void>;
  /**
   * Handles the whole claimed batch at once and commits its outcome itself: the effect, each
   * event's receipt and the messages' deletes, in ONE transaction (all or nothing). Optional;
   * when it throws, the batch's events are handled one by one with `handle`, which brings the
   * retries and the final failure of the one event that fails.
   */
  handleBatch?(jobs: EventJob[]): Promise<void>;
  /** Told of a failed try before its outcome commits (the notifier records the attempt). */
  onFailure?(job: EventJob, decision: RetryDecision, error: unknown): Promise<void>;
  /** Seconds before try `attempt + 1`; default the retry policy's backoff (2, 4, 8 ... s). */
  retryDelaySeconds?(attempt: number, retryAfterSeconds?: number): number;
  /** Messages per batch. Default 16. */
  batchSize?: number;
  /** Events handled at once. Default 4. */
  concurrency?: number;
  /** Seconds a read message stays hidden. Default 60; extended every half of it while a job runs. */
  visibilityTimeoutSeconds?: number;
  /** Time budget of one event. Default 30000. */
  timeoutMs?: number;
}

/** The JSON summary a subscriber worker's invocation answers. */
export interface SubscriberSummary {
  worker: string;
  queue: string;
  read: number;
  done: number;
  retried: number;
  failed: number;
  /** Duplicates of handled events, events gone, malformed messages. */
  ignored: number;
  /** Events whose outcome could not be recorded; they are delivered again later. */
  errors: number;
  /** Messages given back (visible at once) because the worker was stopping. */
  released: number;
  /**
   * A full batch was read: more may be waiting, so call again at once. Otherwise the queue
   * had no more for now, and a scheduler may wait for news (local/scheduler.ts).
   */
  more: boolean;
  durationMs: number;
}

interface ClaimRow {
  msg_id: number;
  event_id: string;
  proceed: boolean;
  attempt: number;
  event: INEvent | null;
}

/** Reads one batch from the subscriber's queue and handles it. */
export async function runSubscriberBatch(
  deps: RunnerDeps,
  def: SubscriberDefinition,
): Promise<SubscriberSummary> {
  const started = performance.now();
  const queue = await subscriptionQueue(deps, def.subscriber);
  const summary: SubscriberSummary = {
    worker: def.source,
    queue,
    read: 0,
    done: 0,
    retried: 0,
    failed: 0,
    ignored: 0,
    errors: 0,
    released: 0,
    more: false,
    durationMs: 0,
  };
  const finish = () => {
    summary.durationMs = Math.round(performance.now() - started);
    return summary;
  };
  // Stopping: read nothing more.
  if (deps.stopSignal?.aborted) return finish();
  const batchSize = def.batchSize ?? 16;
  const batch = await readBatch<SubscriberMessage>(
    deps.db,
    deps.log,
    queue,
    "eventId",
    def.visibilityTimeoutSeconds ?? 60,
    batchSize,
  );
  summary.read = batch.read;
  summary.more = batch.read >= batchSize;
  summary.ignored = batch.malformed;
  if (deps.stopSignal?.aborted) {
    // Stopped while reading: give the batch back unclaimed.
    for (const m of batch.messages) await releaseMessage(deps.db, deps.log, queue, m.msgId);
    summary.released = batch.messages.length;
    return finish();
  }
  const claims = batch.messages.length === 0 ? [] : await deps.db.query<ClaimRow>(
    `select * from darkroom.claim_events(p_subscriber => $1, p_msg_ids => $2::bigint[],
       p_event_ids => $3::uuid[], p_read_cts => $4::integer[], p_max_attempts => $5::integer)`,
    [
      def.subscriber,
      batch.messages.map((m) => m.msgId),
      batch.messages.map((m) => m.message.eventId),
      batch.messages.map((m) => m.readCt),
      deps.maxAttempts,
    ],
  );
  const jobs = claims.filter((c) => c.proceed);
  summary.ignored += claims.length - jobs.length;
  if (def.handleBatch && jobs.length > 0 && !deps.stopSignal?.aborted) {
    if (await handleAll(deps, def, jobs)) {
      summary.done += jobs.length;
      deps.log.debug("batch handled", { ...summary, durationMs: undefined });
      return finish();
    }
  }
  const acks = acksOf(deps, def);
  await forEachLimited(jobs, def.concurrency ?? 4, async (claim) => {
    if (deps.stopSignal?.aborted) {
      // Stopped before this one started: give it back at once.
      const log = deps.log.child({
        traceId: claim.event?.traceId,
        taskId: claim.event?.taskId,
        eventId: claim.event_id,
        subscriber: def.subscriber,
        msgId: Number(claim.msg_id),
      });
      await releaseMessage(deps.db, log, queue, Number(claim.msg_id));
      summary.released++;
      return;
    }
    summary[await handleOne(deps, def, queue, claim, acks)]++;
  });
  if (summary.read > 0) deps.log.debug("batch handled", { ...summary, durationMs: undefined });
  return finish();
}

type Outcome = "done" | "retried" | "failed" | "errors" | "released";

/** The batch through `def.handleBatch`; false when it failed (nothing of it committed). */
async function handleAll(
  deps: RunnerDeps,
  def: SubscriberDefinition,
  claims: ClaimRow[],
): Promise<boolean> {
  const started = performance.now();
  const timeout = timeoutSignal(def.timeoutMs ?? 30_000);
  const signal = timeout.signal;
  const jobs = claims.map((claim): EventJob => ({
    msgId: Number(claim.msg_id),
    attempt: claim.attempt,
    maxAttempts: deps.maxAttempts,
    event: claim.event!,
    log: deps.log.child({
      traceId: claim.event!.traceId,
      taskId: claim.event!.taskId,
      eventId: claim.event!.eventId,
      eventType: claim.event!.eventType,
      subscriber: def.subscriber,
      msgId: Number(claim.msg_id),
    }),
    signal,
  }));
  try {
    await def.handleBatch!(jobs);
    const durationMs = Math.round(performance.now() - started);
    for (const job of jobs) job.log.info("event handled", { attempt: job.attempt, durationMs });
    return true;
  } catch (error) {
    // A batch line, not an event's: it names the worker, each event's own line follows.
    deps.log.warn("batch failed; handling its events one by one", {
      worker: def.source,
      count: jobs.length,
      err: error,
    });
    return false;
  } finally {
    timeout.clear();
  }
}

/** Subscriber name -> its queue, as darkroom.subscription_queue says (a name keeps its queue). */
const queues = new WeakMap<RunnerDeps["db"], Map<string, string>>();

/** The subscriber's queue, asked of the database once per Db and subscriber. */
async function subscriptionQueue(deps: RunnerDeps, subscriber: string): Promise<string> {
  let known = queues.get(deps.db);
  if (!known) queues.set(deps.db, known = new Map());
  const cached = known.get(subscriber);
  if (cached) return cached;
  const [{ queue }] = await deps.db.query<{ queue: string }>(
    "select darkroom.subscription_queue(p_subscriber => $1) as queue",
    [subscriber],
  );
  known.set(subscriber, queue);
  return queue;
}

/** An ack to commit: ack_event's arguments. */
interface Ack {
  msgId: number;
  eventId: string;
  attempts: number;
}

/**
 * The batch's handled events, group-committed: those handled while an ack is in flight go
 * together through darkroom.ack_events (one transaction).
 */
function acksOf(deps: RunnerDeps, def: SubscriberDefinition): GroupCommit<Ack, void> {
  return new GroupCommit(
    async (items) => {
      await deps.db.query(
        "select darkroom.ack_events(p_subscriber => $1, p_items => $2::jsonb) as n",
        [def.subscriber, JSON.stringify(items)],
      );
      return items.map(() => undefined);
    },
    (item) =>
      transition(deps, "ack_event", [def.subscriber, item.msgId, item.eventId, item.attempts]),
  );
}

async function handleOne(
  deps: RunnerDeps,
  def: SubscriberDefinition,
  queue: string,
  claim: ClaimRow,
  acks: GroupCommit<Ack, void>,
): Promise<Outcome> {
  const event = claim.event!;
  const log = deps.log.child({
    traceId: event.traceId,
    taskId: event.taskId,
    eventId: event.eventId,
    eventType: event.eventType,
    subscriber: def.subscriber,
    msgId: Number(claim.msg_id),
  });
  const timeout = timeoutSignal(def.timeoutMs ?? 30_000);
  const budget = timeout.signal;
  const job: EventJob = {
    msgId: Number(claim.msg_id),
    attempt: claim.attempt,
    maxAttempts: deps.maxAttempts,
    event,
    log,
    signal: budget,
  };
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  log.debug("event started", { attempt: job.attempt });
  const held = await runHeld(
    {
      db: deps.db,
      log,
      queue,
      msgId: job.msgId,
      vtSeconds: def.visibilityTimeoutSeconds ?? 60,
    },
    deps,
    (deadline) =>
      def.handle(deadline ? { ...job, signal: AbortSignal.any([budget, deadline]) } : job),
  ).finally(timeout.clear);
  if (held.kind === "released") return "released";
  let failure: unknown = held.kind === "threw" ? held.error : undefined;
  if (held.kind === "done") {
    try {
      await acks.submit({ msgId: job.msgId, eventId: event.eventId, attempts: job.attempt });
      log.info("event handled", { attempt: job.attempt, durationMs: elapsed() });
      return "done";
    } catch (error) {
      failure = error;
    }
  }
  const decision = decide(def, failure, job);
  try {
    await def.onFailure?.(job, decision, failure);
    if (decision.action === "retry") {
      log.warn("event failed, retry scheduled", {
        code: decision.code,
        err: failure,
        delaySeconds: decision.delaySeconds,
        attempt: job.attempt,
        durationMs: elapsed(),
      });
      await transition(deps, "retry_event", [def.subscriber, job.msgId, decision.delaySeconds]);
      return "retried";
    }
    log.warn("event failed", { code: decision.code, err: failure, attempt: job.attempt });
    await transition(deps, "fail_event", [
      def.subscriber,
      job.msgId,
      event.eventId,
      job.attempt,
      `${decision.code}: ${decision.message}`,
    ]);
    return "failed";
  } catch (error) {
    // The message stays hidden until its visibility timeout, then is delivered again.
    log.error("cannot record event outcome; message will be delivered again", { err: error });
    return "errors";
  }
}

/** The retry policy's decision, with the subscriber's own delays when it has them. */
function decide(def: SubscriberDefinition, failure: unknown, job: EventJob): RetryDecision {
  const decision = decideRetry(failure, job.attempt, job.maxAttempts);
  if (decision.action !== "retry" || !def.retryDelaySeconds) return decision;
  const retryAfter = failure instanceof StageError ? failure.retryAfterSeconds : undefined;
  return { ...decision, delaySeconds: def.retryDelaySeconds(job.attempt, retryAfter) };
}

const TRANSITIONS = {
  ack_event:
    "select darkroom.ack_event(p_subscriber => $1, p_msg_id => $2::bigint, p_event_id => $3::uuid, p_attempts => $4::integer) as r",
  retry_event:
    "select darkroom.retry_event(p_subscriber => $1, p_msg_id => $2::bigint, p_delay_seconds => $3::integer) as r",
  fail_event:
    "select darkroom.fail_event(p_subscriber => $1, p_msg_id => $2::bigint, p_event_id => $3::uuid, p_attempts => $4::integer, p_error => $5) as r",
} as const;

async function transition(deps: RunnerDeps, name: keyof typeof TRANSITIONS, params: unknown[]) {
  await deps.db.query(TRANSITIONS[name], params);
}
