/**
 * @module histogram — the fixed log-scale latency buckets of the analytics rollups, the same rule
 * as darkroom.latency_bucket() / darkroom.latency_bucket_value() (a test checks they agree):
 * bucket 0 holds 0 ms, bucket b >= 1 holds [2^((b-1)/4), 2^(b/4)) ms, capped at 127.
 */

/** The highest bucket. */
export const MAX_BUCKET = 127;

/** The bucket of a duration in ms. */
export function latencyBucket(ms: number): number {
  if (!(ms >= 1)) return 0;
  return Math.min(Math.floor(4 * Math.log2(Math.floor(ms))) + 1, MAX_BUCKET);
}

/** The value a bucket reports for a percentile: its geometric middle, in whole ms. */
export function latencyBucketValue(bucket: number): number {
  return bucket <= 0 ? 0 : Math.round(2 ** ((bucket - 0.5) / 4));
}

/**
 * The nearest-rank percentile `q` (0..1) of a histogram (bucket -> count), as a bucket value; 0
 * for an empty histogram.
 */
export function histogramPercentile(counts: Map<number, number>, q: number): number {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const bucket of [...counts.keys()].sort((a, b) => a - b)) {
    seen += counts.get(bucket)!;
    if (seen >= rank) return latencyBucketValue(bucket);
  }
  return latencyBucketValue(MAX_BUCKET);
}
