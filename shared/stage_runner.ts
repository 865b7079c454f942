/**
 * @module stage_runner — the engine every stage worker shares: read a batch from the stage's
 * queue with a visibility timeout, claim it in one statement, handle the messages with bounded
 * concurrency, and commit each outcome atomically through the SQL functions. The event
 * subscribers' engine (subscriber_runner.ts) is the same shape over the same pieces (batch.ts).
 */
import type { Db } from "./db.ts";
import type { Logger } from "./log.ts";
import type { ImageMetadata } from "./metadata/types.ts";
import {
  forEachLimited,
  GroupCommit,
  readBatch,
  releaseMessage,
  runHeld,
  type StopOptions,
  timeoutSignal,
} from "./batch.ts";
import { type Stage, STAGE_QUEUES, type StageResults } from "./stages.ts";
import { decideRetry } from "./retry_policy.ts";

/** The tasks row as begin_stage hands it over (to_jsonb of public.tasks). */
export interface TaskRowJson {
  id: string;
  trace_id: string;
  owner: string | null;
  status: string;
  stage: Stage | null;
  image_url: string;
  callback_url: string | null;
  options: Record<string, unknown>;
  attempts: Partial<Record<Stage, number>>;
}

/** The images row as begin_stage hands it over (to_jsonb of public.images). */
export interface ImageRowJson {
  id: string;
  sha256: string;
  content_type: string;
  byte_size: number;
  storage_path: string;
  width: number | null;
  height: number | null;
  format: string | null;
  metadata: ImageMetadata | null;
}

/** Why a stage gives its message back without spending a try (tasks.waiting_is_known). */
export type WaitReason = "budget" | "rate_limit" | "reuse";

/**
 * Thrown by a stage that cannot start its real work yet: the runner gives the message back for
 * `delaySeconds` through darkroom.release_stage. Not a try (no attempt spent, no
 * task.retry_scheduled); the task shows `queued` with `waiting: reason` meanwhile.
 *
 * @example
 * throw new StageWait(12, "rate_limit", { provider: "openai" });
 */
export class StageWait extends Error {
  override readonly name = "StageWait";
  /** Seconds until the message is visible again (at least 1). */
  readonly delaySeconds: number;
  readonly reason: WaitReason;
  /** Extra fields for the task.throttled event a budget wait publishes. */
  readonly detail: Record<string, unknown>;

  constructor(delaySeconds: number, reason: WaitReason, detail: Record<string, unknown> = {}) {
    super(`Stage waits ${delaySeconds} s: ${reason}`);
    this.delaySeconds = Math.max(1, Math.ceil(delaySeconds));
    this.reason = reason;
    this.detail = detail;
  }
}

/** One message being handled, with the task and image rows it names. */
export interface StageJob {
  msgId: number;
  taskId: string;
  traceId: string;
  /** Tries of this stage so far, this one included: the task's attempts, which the policy reads. */
  attempt: number;
  /** The tasks row. */
  task: TaskRowJson;
  /** The images row, once the download stage has made one. */
  image: ImageRowJson | null;
  log: Logger;
  /** Aborted when the stage's time budget is spent, or at the deadline of a stop. */
  signal: AbortSignal;
}

/** What a stage is: its name, who publishes, and the work. */
export interface StageDefinition<S extends Stage = Stage> {
  stage: S;
  /** The function that publishes this stage's events (download-worker, ...). */
  source: string;
  /** Does the stage's work; its result goes to complete_stage as p_result. Throws StageError. */
  run(job: StageJob): Promise<StageResults[S]>;
  /** Messages per batch. Default 8. */
  batchSize?: number;
  /** Messages handled at once. Default 4. */
  concurrency?: number;
  /**
   * Seconds a read message stays hidden. Default 60. While its job runs the runner extends it
   * every half of it, so a job may outlive it; `timeoutMs` still bounds the job.
   */
  visibilityTimeoutSeconds?: number;
  /** Time budget of one message. Default 45000. */
  timeoutMs?: number;
}

/** What the runner needs; `stopSignal` and `stopGraceMs` make it stop gracefully. */
export interface RunnerDeps extends StopOptions {
  db: Db;
  log: Logger;
  /** MAX_ATTEMPTS: tries of a stage before the task fails. */
  maxAttempts: number;
}

/** The JSON summary a worker invocation answers. */
export interface BatchSummary {
  worker: string;
  queue: string;
  read: number;
  advanced: number;
  completed: number;
  retried: number;
  failed: number;
  ignored: number;
  /** Messages whose outcome could not be recorded; they are delivered again later. */
  errors: number;
  /** Messages given back (visible at once) because the worker was stopping. */
  released: number;
  /** Messages given back for later by a {@linkcode StageWait}: no try spent. */
  deferred: number;
  /**
   * A full batch was read: more may be waiting, so call again at once. Otherwise the queue
   * had no more for now, and a scheduler may wait for news (local/scheduler.ts).
   */
  more: boolean;
  durationMs: number;
}

interface ClaimRow {
  msg_id: number;
  task_id: string;
  proceed: boolean;
  attempt: number;
  task: TaskRowJson | null;
  image: ImageRowJson | null;
}

/** Reads one batch from the stage's queue and handles it. */
export async function runStageBatch<S extends Stage>(
  deps: RunnerDeps,
  def: StageDefinition<S>,
): Promise<BatchSummary> {
  const started = performance.now();
  const queueName = STAGE_QUEUES[def.stage];
  const summary: BatchSummary = {
    worker: def.source,
    queue: queueName,
    read: 0,
    advanced: 0,
    completed: 0,
    retried: 0,
    failed: 0,
    ignored: 0,
    errors: 0,
    released: 0,
    deferred: 0,
    more: false,
    durationMs: 0,
  };
  const vtSeconds = def.visibilityTimeoutSeconds ?? 60;
  const batchSize = def.batchSize ?? 8;
  const finish = () => {
    summary.durationMs = Math.round(performance.now() - started);
    return summary;
  };
  // Stopping: read nothing more.
  if (deps.stopSignal?.aborted) return finish();
  const batch = await readBatch<{ taskId: string; traceId?: string }>(
    deps.db,
    deps.log,
    queueName,
    "taskId",
    vtSeconds,
    batchSize,
  );
  summary.read = batch.read;
  summary.more = batch.read >= batchSize;
  summary.ignored = batch.malformed;
  const valid = batch.messages;
  if (deps.stopSignal?.aborted) {
    // Stopped while reading: give the batch back unclaimed (no try counted).
    for (const m of valid) await releaseMessage(deps.db, deps.log, queueName, m.msgId);
    summary.released = valid.length;
    return finish();
  }

  const claims = valid.length === 0 ? [] : await deps.db.query<ClaimRow>(
    `select * from darkroom.begin_stage(p_stage => $1, p_msg_ids => $2::bigint[],
       p_task_ids => $3::uuid[], p_max_attempts => $4::integer)`,
    [def.stage, valid.map((m) => m.msgId), valid.map((m) => m.message.taskId), deps.maxAttempts],
  );
  const jobs = claims.filter((c) => c.proceed);
  summary.ignored += claims.length - jobs.length;
  const completions = completionsOf(deps.db, def);

  await forEachLimited(jobs, def.concurrency ?? 4, async (claim) => {
    if (deps.stopSignal?.aborted) {
      // Stopped before this one started: give it back at once.
      await releaseMessage(
        deps.db,
        deps.log.child({
          traceId: claim.task?.trace_id,
          taskId: claim.task_id,
          stage: def.stage,
          msgId: Number(claim.msg_id),
        }),
        queueName,
        Number(claim.msg_id),
      );
      summary.released++;
      return;
    }
    const outcome = await handleOne(deps, def, claim, completions);
    summary[outcome]++;
  });
  if (summary.read > 0) deps.log.debug("batch handled", { ...summary, durationMs: undefined });
  return finish();
}

type Outcome =
  | "advanced"
  | "completed"
  | "retried"
  | "failed"
  | "ignored"
  | "errors"
  | "released"
  | "deferred";

/** A success to commit: complete_stage's arguments. */
interface Completion {
  taskId: string;
  msgId: number;
  result: unknown;
}

type CompleteOutcome = "advanced" | "completed" | "ignored";

/**
 * The batch's successes, group-committed: those that finish while a commit is in flight go
 * together through darkroom.complete_stages (one transaction), each outcome still whole.
 */
function completionsOf(db: Db, def: StageDefinition): GroupCommit<Completion, CompleteOutcome> {
  return new GroupCommit(
    async (items) => {
      const rows = await db.query<{ msg_id: number; outcome: CompleteOutcome }>(
        `select msg_id, outcome from darkroom.complete_stages(p_stage => $1,
           p_items => $2::jsonb, p_source => $3)`,
        [def.stage, JSON.stringify(items), def.source],
      );
      return rows.map((r) => r.outcome);
    },
    async (item) =>
      await callTransition(db, "complete_stage", [
        item.taskId,
        def.stage,
        item.msgId,
        JSON.stringify(item.result),
        def.source,
      ]) as CompleteOutcome,
  );
}

async function handleOne<S extends Stage>(
  deps: RunnerDeps,
  def: StageDefinition<S>,
  claim: ClaimRow,
  completions: GroupCommit<Completion, CompleteOutcome>,
): Promise<Outcome> {
  // begin_stage hands over the task with every claim it lets proceed.
  const task = claim.task!;
  const traceId = task.trace_id;
  const log = deps.log.child({
    traceId,
    taskId: claim.task_id,
    stage: def.stage,
    msgId: Number(claim.msg_id),
  });
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  log.debug("stage started", { attempt: claim.attempt });
  const timeout = timeoutSignal(def.timeoutMs ?? 45_000);
  const budget = timeout.signal;
  const held = await runHeld(
    {
      db: deps.db,
      log,
      queue: STAGE_QUEUES[def.stage],
      msgId: Number(claim.msg_id),
      vtSeconds: def.visibilityTimeoutSeconds ?? 60,
    },
    deps,
    (deadline) =>
      def.run({
        msgId: Number(claim.msg_id),
        taskId: claim.task_id,
        traceId,
        attempt: claim.attempt,
        task,
        image: claim.image,
        log,
        signal: deadline ? AbortSignal.any([budget, deadline]) : budget,
      }),
  ).finally(timeout.clear);
  if (held.kind === "released") return "released";
  let failure: unknown = held.kind === "threw" ? held.error : undefined;
  if (held.kind === "done") {
    try {
      const outcome = await completions.submit({
        taskId: claim.task_id,
        msgId: Number(claim.msg_id),
        result: held.value,
      });
      log.info(outcome === "ignored" ? "stage result ignored" : "stage completed", {
        outcome,
        durationMs: elapsed(),
      });
      return outcome;
    } catch (error) {
      failure = error;
    }
  }
  if (failure instanceof StageWait) {
    try {
      const r = await callTransition(deps.db, "release_stage", [
        def.stage,
        claim.msg_id,
        claim.task_id,
        failure.delaySeconds,
        failure.reason,
        def.source,
        JSON.stringify(failure.detail),
      ]);
      log.info("stage deferred", {
        reason: failure.reason,
        delaySeconds: failure.delaySeconds,
        durationMs: elapsed(),
      });
      return r === "ignored" ? "ignored" : "deferred";
    } catch (error) {
      log.error("cannot release message; it will be delivered again", { err: error });
      return "errors";
    }
  }
  const decision = decideRetry(failure, claim.attempt, deps.maxAttempts);
  try {
    if (decision.action === "retry") {
      log.warn("stage failed, retry scheduled", {
        code: decision.code,
        err: failure,
        attempt: claim.attempt,
        delaySeconds: decision.delaySeconds,
        durationMs: elapsed(),
      });
      const r = await callTransition(deps.db, "schedule_retry", [
        claim.task_id,
        def.stage,
        claim.msg_id,
        decision.delaySeconds,
        decision.code,
        decision.message,
        def.source,
      ]);
      return r === "ignored" ? "ignored" : "retried";
    }
    log.warn("stage failed", {
      code: decision.code,
      err: failure,
      attempt: claim.attempt,
      durationMs: elapsed(),
    });
    const r = await callTransition(deps.db, "fail_stage", [
      claim.task_id,
      def.stage,
      claim.msg_id,
      decision.code,
      decision.message,
      def.source,
    ]);
    return r === "ignored" ? "ignored" : "failed";
  } catch (error) {
    // The message stays hidden until its visibility timeout, then is delivered again.
    log.error("cannot record stage outcome; message will be delivered again", { err: error });
    return "errors";
  }
}

const TRANSITIONS = {
  complete_stage:
    "select darkroom.complete_stage(p_task_id => $1::uuid, p_stage => $2, p_msg_id => $3::bigint, p_result => $4::jsonb, p_source => $5) as r",
  schedule_retry:
    "select darkroom.schedule_retry(p_task_id => $1::uuid, p_stage => $2, p_msg_id => $3::bigint, p_delay_seconds => $4::integer, p_code => $5, p_message => $6, p_source => $7) as r",
  release_stage:
    "select darkroom.release_stage(p_stage => $1, p_msg_id => $2::bigint, p_task_id => $3::uuid, p_delay_seconds => $4::integer, p_reason => $5, p_source => $6, p_detail => $7::jsonb) as r",
  fail_stage:
    "select darkroom.fail_stage(p_task_id => $1::uuid, p_stage => $2, p_msg_id => $3::bigint, p_code => $4, p_message => $5, p_source => $6) as r",
} as const;

async function callTransition(
  db: Db,
  name: keyof typeof TRANSITIONS,
  params: unknown[],
): Promise<string> {
  const [row] = await db.query<{ r: string }>(TRANSITIONS[name], params);
  return row.r;
}

export { forEachLimited } from "./batch.ts";
