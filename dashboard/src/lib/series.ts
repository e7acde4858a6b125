// Pure helpers for chart data: converting API series for uPlot, merging live
// samples into a downsampled series, and finding what overlays sit at a time.

import type { FindingMark, QuerySeries, Sample, ScanWindow } from "./types";

/** A series being shown, with how many raw samples each bucket holds (for live averaging). */
export interface LiveSeries {
  name: string;
  labels: Record<string, string>;
  timestamps_ms: number[];
  avg: number[];
  min: number[];
  max: number[];
  counts: number[];
}

export function toLive(series: QuerySeries): LiveSeries {
  return {
    name: series.name,
    labels: { ...series.labels },
    timestamps_ms: [...series.timestamps_ms],
    avg: [...series.avg],
    min: [...series.min],
    max: [...series.max],
    // The API does not say how many samples a bucket holds; weigh each as one
    // so that live samples move the average visibly but not wildly.
    counts: series.timestamps_ms.map(() => 1),
  };
}

/**
 * Merge one sample into the series. Samples within ``stepMs`` of the last
 * bucket's start fold into it (min, max and running average); later ones open
 * a new bucket; samples older than the last bucket are ignored (the chart is
 * refetched on range changes, so late data shows then). Returns true when the
 * series changed.
 */
export function mergeSample(series: LiveSeries, ts: number, value: number, stepMs: number): boolean {
  if (!Number.isFinite(value) || !Number.isFinite(ts)) return false;
  const n = series.timestamps_ms.length;
  const lastTs = n > 0 ? series.timestamps_ms[n - 1] : -Infinity;
  if (n > 0 && ts >= lastTs && ts < lastTs + Math.max(stepMs, 1)) {
    const i = n - 1;
    const count = series.counts[i] + 1;
    series.avg[i] = series.avg[i] + (value - series.avg[i]) / count;
    series.min[i] = Math.min(series.min[i], value);
    series.max[i] = Math.max(series.max[i], value);
    series.counts[i] = count;
    return true;
  }
  if (ts < lastTs) return false;
  series.timestamps_ms.push(ts);
  series.avg.push(value);
  series.min.push(value);
  series.max.push(value);
  series.counts.push(1);
  return true;
}

/** Drop buckets that start before ``startMs`` (keeps a sliding window). */
export function trimBefore(series: LiveSeries, startMs: number): void {
  let cut = 0;
  while (cut < series.timestamps_ms.length && series.timestamps_ms[cut] < startMs) cut += 1;
  if (cut === 0) return;
  series.timestamps_ms.splice(0, cut);
  series.avg.splice(0, cut);
  series.min.splice(0, cut);
  series.max.splice(0, cut);
  series.counts.splice(0, cut);
}

/** Same label set, exactly (a host total is not its per-core series). */
export function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

/**
 * Merge every sample of a batch that belongs to this series (same name, the
 * same label set) and lies in [fromMs, toMs] when given (a paused chart
 * takes nothing outside its range).
 */
export function mergeSamples(
  series: LiveSeries,
  samples: readonly Sample[],
  stepMs: number,
  fromMs = -Infinity,
  toMs = Infinity,
): number {
  let merged = 0;
  const sorted = samples
    .filter((s) => s.name === series.name && sameLabels(series.labels, s.labels))
    .filter((s) => s.timestamp_ms >= fromMs && s.timestamp_ms <= toMs)
    .sort((a, b) => a.timestamp_ms - b.timestamp_ms);
  for (const s of sorted) {
    if (mergeSample(series, s.timestamp_ms, s.value, stepMs)) merged += 1;
  }
  return merged;
}

/** uPlot's aligned data: x in seconds, then min, max, avg. */
export function toChartData(series: LiveSeries | QuerySeries): [number[], number[], number[], number[]] {
  return [series.timestamps_ms.map((t) => t / 1000), series.min, series.max, series.avg];
}

/** The bucket width the server uses for ``points`` buckets over a range (ms, at least 1). */
export function stepFor(rangeMs: number, points: number): number {
  return Math.max(1, Math.ceil(rangeMs / Math.max(1, points)));
}

/** The scan whose window contains ``ts`` (a running scan's window is open-ended up to ``now``). */
export function scanAt(scans: readonly ScanWindow[], ts: number, now: number): ScanWindow | null {
  for (const scan of scans) {
    const end = scan.end_ms ?? now;
    if (ts >= scan.start_ms && ts <= end) return scan;
  }
  return null;
}

/** Findings stamped within ``radiusMs`` of ``ts``, nearest first. */
export function findingsNear(findings: readonly FindingMark[], ts: number, radiusMs: number): FindingMark[] {
  return findings
    .filter((f) => Math.abs(f.ts_ms - ts) <= radiusMs)
    .sort((a, b) => Math.abs(a.ts_ms - ts) - Math.abs(b.ts_ms - ts));
}

/** Index of the point nearest to ``ts`` in a sorted array, or -1 when empty. */
export function nearestIndex(timestamps: readonly number[], ts: number): number {
  if (timestamps.length === 0) return -1;
  let lo = 0;
  let hi = timestamps.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (timestamps[mid] < ts) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(timestamps[lo - 1] - ts) <= Math.abs(timestamps[lo] - ts)) return lo - 1;
  return lo;
}

/** The shared scale of two five-number summaries (for the evidence chart), padded by 5 %. */
export function quantileScale(a: readonly number[], b: readonly number[]): [number, number] {
  const all = [...a, ...b].filter((v) => Number.isFinite(v));
  if (all.length === 0) return [0, 1];
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const pad = (hi - lo) * 0.05;
  return [lo - pad, hi + pad];
}

/** Split a metric query's series list by label set, picking the one matching ``key`` or the first. */
export function pickSeries<T extends { labels: Record<string, string> }>(list: readonly T[], key: string): T | null {
  if (list.length === 0) return null;
  return list.find((s) => labelKey(s.labels) === key) ?? list[0];
}

export function labelKey(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
}
