/**
 * @module tasks — calls to the SQL functions that own task state, and the task resource that
 * GET /tasks/:id returns. Named arguments keep each call readable next to its SQL definition.
 */
import type { Queryable } from "./db.ts";
import { eventFromRow, type EventRow, type INEvent } from "./events.ts";
import { type Stage, STAGE_NAMES } from "./stages.ts";

/** The statuses of a task (tasks.status_is_known in SQL; a test compares the two). */
export const TASK_STATUSES = ["queued", "processing", "completed", "failed", "cancelled"] as const;

/** Status of a task. */
export type TaskStatus = typeof TASK_STATUSES[number];

/** What POST /tasks accepts, after validation. */
export interface NewTask {
  imageUrl: string;
  callbackUrl?: string;
  options?: Record<string, unknown>;
  idempotencyKey?: string;
}

/** What creating a task answers. */
export interface CreatedTask {
  taskId: string;
  traceId: string;
  status: TaskStatus;
  /** False when an Idempotency-Key returned an existing task. */
  created: boolean;
}

/** Creates a task: task.created published and its download queued, in one transaction. */
export async function createTask(
  db: Queryable,
  task: NewTask,
  owner?: string,
): Promise<CreatedTask> {
  const [row] = await db.query<
    { task_id: string; trace_id: string; status: TaskStatus; created: boolean }
  >(
    `select * from darkroom.create_task(p_image_url => $1, p_callback_url => $2,
       p_options => $3::jsonb, p_idempotency_key => $4, p_owner => $5::uuid)`,
    [
      task.imageUrl,
      task.callbackUrl ?? null,
      JSON.stringify(task.options ?? {}),
      task.idempotencyKey ?? null,
      owner ?? null,
    ],
  );
  return { taskId: row.task_id, traceId: row.trace_id, status: row.status, created: row.created };
}

/** Creates many tasks in one transaction; results in input order. */
export async function createTasks(
  db: Queryable,
  tasks: NewTask[],
  owner?: string,
): Promise<CreatedTask[]> {
  const rows = await db.query<
    { task_id: string; trace_id: string; status: TaskStatus; created: boolean }
  >(
    "select * from darkroom.create_tasks(p_tasks => $1::jsonb, p_owner => $2::uuid)",
    [JSON.stringify(tasks), owner ?? null],
  );
  return rows.map((r) => ({
    taskId: r.task_id,
    traceId: r.trace_id,
    status: r.status,
    created: r.created,
  }));
}

/** The task resource of the HTTP API. */
export interface TaskResource {
  taskId: string;
  traceId: string;
  status: TaskStatus;
  stage: Stage | null;
  imageUrl: string;
  callbackUrl: string | null;
  /** Tries made at each stage (0 before the first): the count the retry policy reads. */
  attempts: Record<Stage, number>;
  /** The error that failed the task, or, while a retry waits, the error it retries. */
  error: null | { code: string; message: string; stage: Stage | null };
  /** When a scheduled retry is due; null unless one waits. */
  nextAttemptAt: string | null;
  /** Why a queued task waits without spending a try (tasks.waiting); null unless it does. */
  waiting: "budget" | "rate_limit" | "reuse" | null;
  /** When a waiting task is looked at again. */
  waitingUntil: string | null;
  image: null | {
    id: string;
    sha256: string;
    contentType: string;
    byteSize: number;
    width: number | null;
    height: number | null;
    format: string | null;
    metadata: Record<string, unknown> | null;
    analysis: Record<string, unknown> | null;
    /** The camera's embedded preview (GET /tasks/:id/thumbnail serves it). */
    thumbnail: Thumbnail | null;
  };
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
}

/** An image's embedded preview. */
export interface Thumbnail {
  sha256: string;
  contentType: string;
  byteSize: number;
  width: number;
  height: number;
}

interface TaskRow {
  id: string;
  trace_id: string;
  status: TaskStatus;
  stage: Stage | null;
  image_url: string;
  callback_url: string | null;
  attempts: Partial<Record<Stage, number>>;
  error_code: string | null;
  error_message: string | null;
  error_stage: Stage | null;
  retry_at: Date | string | null;
  waiting?: "budget" | "rate_limit" | "reuse" | null;
  waiting_until?: Date | string | null;
  created_at: Date | string;
  updated_at: Date | string;
  completed_at: Date | string | null;
  image: null | {
    id: string;
    sha256: string;
    content_type: string;
    byte_size: number;
    storage_path: string;
    width: number | null;
    height: number | null;
    format: string | null;
    metadata: Record<string, unknown> | null;
    analysis: Record<string, unknown> | null;
    thumbnail: Thumbnail | null;
  };
}

const iso = (d: Date | string) => new Date(d).toISOString();

/** Maps a tasks row (with its image as JSON) to the task resource. */
export function taskFromRow(r: TaskRow): TaskResource {
  return {
    taskId: r.id,
    traceId: r.trace_id,
    status: r.status,
    stage: r.stage,
    imageUrl: r.image_url,
    callbackUrl: r.callback_url,
    attempts: Object.fromEntries(STAGE_NAMES.map((s) => [s, r.attempts?.[s] ?? 0])) as Record<
      Stage,
      number
    >,
    error: r.error_code
      ? { code: r.error_code, message: r.error_message ?? "", stage: r.error_stage }
      : null,
    nextAttemptAt: r.retry_at ? iso(r.retry_at) : null,
    // tasks.waiting outlives the wait until the stage admits the task again: only a queued
    // task is waiting.
    waiting: r.status === "queued" ? r.waiting ?? null : null,
    waitingUntil: r.status === "queued" && r.waiting && r.waiting_until
      ? iso(r.waiting_until)
      : null,
    image: r.image
      ? {
        id: r.image.id,
        sha256: r.image.sha256,
        contentType: r.image.content_type,
        byteSize: Number(r.image.byte_size),
        width: r.image.width,
        height: r.image.height,
        format: r.image.format,
        metadata: r.image.metadata,
        analysis: r.image.analysis,
        thumbnail: r.image.thumbnail ? publicThumbnail(r.image.thumbnail) : null,
      }
      : null,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
    completedAt: r.completed_at ? iso(r.completed_at) : null,
  };
}

/** A thumbnail as clients see it: the store's internal path left out. */
function publicThumbnail(t: Thumbnail & { storagePath?: string }): Thumbnail {
  const { sha256, contentType, byteSize, width, height } = t;
  return { sha256, contentType, byteSize, width, height };
}

/** Where a task's blobs are in the store; null when the task is unknown or has no image yet. */
export async function getImagePaths(
  db: Queryable,
  taskId: string,
): Promise<{ image: string; thumbnail: string | null } | null> {
  const [row] = await db.query<{ image: string; thumbnail: string | null }>(
    `select storage_path as image, thumbnail ->> 'storagePath' as thumbnail
       from public.images where task_id = $1::uuid`,
    [taskId],
  );
  return row ?? null;
}

/** Whether a task exists (and is visible to the caller). */
export async function taskExists(db: Queryable, taskId: string): Promise<boolean> {
  const rows = await db.query("select 1 from public.tasks where id = $1::uuid", [taskId]);
  return rows.length > 0;
}

/** Reads one task with its image; null when unknown (or not visible to the caller). */
export async function getTask(db: Queryable, taskId: string): Promise<TaskResource | null> {
  const [row] = await db.query<TaskRow>(
    `select t.*, (select to_jsonb(i) from public.images i where i.task_id = t.id) as image
       from public.tasks t where t.id = $1::uuid`,
    [taskId],
  );
  return row ? taskFromRow(row) : null;
}

/** What GET /tasks filters and pages by. */
export interface TaskListQuery {
  /** Only these statuses; empty or absent = any. */
  statuses?: readonly TaskStatus[];
  /** Only tasks whose image carries every one of these (normalised) tags; empty = no filter. */
  tags?: readonly string[];
  /** Page size. */
  limit: number;
  /** Start after this (created_at in µs since the epoch, id), from the previous page. */
  after?: { micros: string; id: string } | null;
}

/**
 * The query of {@linkcode listTasks}: $1 statuses, $2 tags, $3/$4 the cursor, $5 the row count.
 * No owner predicate: row level security decides whose rows these are.
 */
export const LIST_TASKS_SQL =
  `select t.*, (extract(epoch from t.created_at) * 1000000)::bigint::text as micros,
            (select to_jsonb(i) || jsonb_build_object('metadata', i.metadata - 'exif')
               from public.images i where i.task_id = t.id) as image
       from public.tasks t
      where ($1::text[] is null or t.status = any($1::text[]))
        and ($2::text[] is null
             or (select count(*) from public.image_tags it
                  where it.task_id = t.id and it.tag = any($2::text[])) = cardinality($2::text[]))
        and ($3::bigint is null
             or (t.created_at, t.id) <
                ('epoch'::timestamptz + $3::bigint * interval '1 microsecond', $4::uuid))
      order by t.created_at desc, t.id desc
      limit $5::integer`;

/** One page of tasks and the cursor of the last one (null when no page follows). */
export interface TaskPage {
  tasks: TaskResource[];
  next: { micros: string; id: string } | null;
}

/**
 * The tasks the caller may see (row level security decides), newest first, without each image's
 * heavy `metadata.exif`. Keyset-paginated on (created_at, id).
 */
export async function listTasks(db: Queryable, q: TaskListQuery): Promise<TaskPage> {
  const rows = await db.query<TaskRow & { micros: string }>(
    LIST_TASKS_SQL,
    [
      q.statuses?.length ? q.statuses : null,
      q.tags?.length ? q.tags : null,
      q.after?.micros ?? null,
      q.after?.id ?? null,
      q.limit + 1,
    ],
  );
  const page = rows.slice(0, q.limit);
  const last = page.at(-1);
  return {
    tasks: page.map(taskFromRow),
    next: rows.length > q.limit && last ? { micros: last.micros, id: last.id } : null,
  };
}

/** A task's events, oldest first. */
export async function listTaskEvents(db: Queryable, taskId: string): Promise<INEvent[]> {
  const rows = await db.query<EventRow>(
    `select seq, id, event_type, task_id, trace_id, source, payload, created_at
       from public.events where task_id = $1::uuid order by seq`,
    [taskId],
  );
  return rows.map(eventFromRow);
}

/** Result of cancel/retry: null when the task is unknown to the caller. */
export interface TransitionResult {
  status: TaskStatus;
  changed: boolean;
}

/** Cancels a task in flight. */
export async function cancelTask(db: Queryable, taskId: string): Promise<TransitionResult | null> {
  const [row] = await db.query<TransitionResult>(
    "select * from darkroom.cancel_task(p_task_id => $1::uuid)",
    [taskId],
  );
  return row ?? null;
}

/** Re-runs a failed task from its failed stage. */
export async function retryTask(db: Queryable, taskId: string): Promise<TransitionResult | null> {
  const [row] = await db.query<TransitionResult>(
    "select * from darkroom.retry_task(p_task_id => $1::uuid)",
    [taskId],
  );
  return row ?? null;
}
