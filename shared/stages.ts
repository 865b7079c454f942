/**
 * @module stages — the pipeline's stages as TypeScript sees them: one typed constant mirroring
 * the SQL registry (darkroom.stages), which a test compares row by row, and the shape of each
 * stage's result as its recorder (darkroom.record_<stage>) reads it.
 */
import type { Analysis } from "./ai/types.ts";
import type { ImageMetadata } from "./metadata/types.ts";

/** The stages of the main flow, in order: the registry's rows. */
export const STAGES = [
  {
    name: "download",
    queue: "image_download",
    worker: "download-worker",
    completedEvent: "image.downloaded",
  },
  {
    name: "metadata",
    queue: "metadata_processing",
    worker: "metadata-worker",
    completedEvent: "image.metadata_extracted",
  },
  { name: "ai", queue: "ai_processing", worker: "ai-worker", completedEvent: "image.analyzed" },
] as const;

/** One stage's name. */
export type Stage = typeof STAGES[number]["name"];

/** The stage names, in order. */
export const STAGE_NAMES: readonly Stage[] = STAGES.map((s) => s.name);

/** The pgmq queue of each stage. */
export const STAGE_QUEUES = Object.fromEntries(STAGES.map((s) => [s.name, s.queue])) as Record<
  Stage,
  string
>;

/** The worker function that drains each stage's queue. */
export const STAGE_WORKERS = Object.fromEntries(STAGES.map((s) => [s.name, s.worker])) as Record<
  Stage,
  string
>;

/** An embedded preview stored as a blob. */
export interface StoredThumbnail {
  sha256: string;
  contentType: string;
  byteSize: number;
  width: number;
  height: number;
  storagePath: string;
}

/** What each stage's worker hands to darkroom.complete_stage (p_result). */
export interface StageResults {
  download: { sha256: string; contentType: string; byteSize: number; storagePath: string };
  metadata: {
    width: number;
    height: number;
    format: string;
    metadata: ImageMetadata;
    thumbnail: StoredThumbnail | null;
  };
  ai: {
    analysis: Analysis;
    /** The prompt version a fresh analysis answered: it is kept for reuse under it. */
    promptVersion?: string;
    /** Reused: the darkroom.analyses id whose analysis the task takes (no provider call). */
    reusedFrom?: string;
    /** Tokens the rate limit took before the call; the difference is booked after it. */
    estimatedTokens?: number;
  };
}

/** A worker function and the queue it drains, as the registry lists them. */
export interface WorkerQueue {
  worker: string;
  queue: string;
  /** A stage of the main flow, or a subscriber of the event fan-out (darkroom.subscriptions). */
  kind: "stage" | "subscriber";
}

/**
 * Every worker the registry lists (darkroom.worker_queues): the stage workers in pipeline order
 * (the local platform drives them, each waking the next), then the enabled subscribers' (woken
 * when events are written).
 */
export async function readWorkerQueues(
  db: import("./db.ts").Queryable,
): Promise<WorkerQueue[]> {
  return await db.query<WorkerQueue>(
    `select w.worker_function as worker, w.queue, w.kind from darkroom.worker_queues w
      order by w.position`,
  );
}
