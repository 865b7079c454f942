/**
 * @module functions — every edge function's handler, for the local platform, which runs them all
 * in one process. Each function's own module (shared/functions/*.ts) imports only what that
 * function runs; the entries under supabase/functions import those, never this one.
 */
import { type ApiFunctionDeps, createApiHandler } from "./functions/api.ts";
import { type AiWorkerDeps, createAiWorker } from "./functions/ai_worker.ts";
import type { Handler } from "./functions/common.ts";
import { createDownloadWorker, type DownloadWorkerDeps } from "./functions/download_worker.ts";
import { createMetadataWorker, type MetadataWorkerDeps } from "./functions/metadata_worker.ts";
import { createTagIndexerWorker } from "./functions/tag_indexer_worker.ts";
import { createAnalyticsWorker } from "./functions/analytics_worker.ts";
import {
  createNotificationWorker,
  type NotificationWorkerDeps,
} from "./functions/notification_worker.ts";

export type { BaseDeps, Handler } from "./functions/common.ts";
export { createApiHandler } from "./functions/api.ts";
export { createDownloadWorker } from "./functions/download_worker.ts";
export { createMetadataWorker } from "./functions/metadata_worker.ts";
export { createAiWorker } from "./functions/ai_worker.ts";
export { createTagIndexerWorker } from "./functions/tag_indexer_worker.ts";
export { createAnalyticsWorker } from "./functions/analytics_worker.ts";
export { createNotificationWorker } from "./functions/notification_worker.ts";

/** What all the functions need together; the local platform builds it. */
export type FunctionDeps =
  & ApiFunctionDeps
  & DownloadWorkerDeps
  & MetadataWorkerDeps
  & AiWorkerDeps
  & NotificationWorkerDeps;

/** Every function by name, as mounted under /functions/v1/<name>. */
export function createAllFunctions(deps: FunctionDeps): Record<string, Handler> {
  return {
    "api": createApiHandler(deps),
    "download-worker": createDownloadWorker(deps),
    "metadata-worker": createMetadataWorker(deps),
    "ai-worker": createAiWorker(deps),
    "tag-indexer-worker": createTagIndexerWorker(deps),
    "notification-worker": createNotificationWorker(deps),
    "analytics-worker": createAnalyticsWorker(deps),
  };
}
