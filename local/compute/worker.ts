/**
 * @module compute/worker — the Web Worker of the compute pool: runs the shared CPU-heavy
 * functions (the very ones an edge function runs inline) on its own thread, one call at a time,
 * and answers with the result or an explicitly encoded error.
 */
import { inlineCompute } from "../../shared/compute.ts";
import { type ComputeReply, type ComputeRequest, serializeError } from "./protocol.ts";

/** The part of a worker's global scope this module uses (typed without the worker lib). */
interface WorkerScope {
  onmessage: ((event: MessageEvent<ComputeRequest>) => void) | null;
  postMessage(message: ComputeReply, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;

scope.onmessage = async ({ data: req }) => {
  try {
    if (req.op === "extract") {
      const result = await inlineCompute.extract(req.bytes, { maxPixels: req.maxPixels });
      // The preview's buffer is this worker's own: hand it over instead of copying it.
      const transfer = result.thumbnail ? [result.thumbnail.bytes.buffer as ArrayBuffer] : [];
      scope.postMessage({ id: req.id, ok: true, result }, transfer);
    } else {
      const result = await inlineCompute.analyzeLocal(req.input);
      scope.postMessage({ id: req.id, ok: true, result });
    }
  } catch (error) {
    scope.postMessage({ id: req.id, ok: false, error: serializeError(error) });
  }
};

// Calls are sent only after this: their deadline measures the work, not the module loading.
scope.postMessage({ ready: true });
