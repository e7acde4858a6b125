// Benchmark trends for the Gate view (pure, tested): one trend per benchmark,
// a point per ok run, oldest first, with the median and the spread the tool
// recorded: the interquartile range (q1–q3) and min–max from
// pytest-benchmark's stats, or mean ± stddev when only those are there.

import type { BenchmarkResult } from "./types";

export type SpreadKind = "iqr" | "stddev" | null;

export interface BenchPoint {
  /** The x axis label: the short commit, or the run's time when there is no commit. */
  label: string;
  /** The full commit, or null. */
  commit: string | null;
  timestamp_ms: number;
  machine: string;
  /** Milliseconds; null when the run recorded no median or mean. */
  median: number | null;
  /** The inner band (q1–q3, or mean ± stddev), ms. */
  lo: number | null;
  hi: number | null;
  /** The outer band (fastest and slowest round), ms. */
  min: number | null;
  max: number | null;
}

export interface BenchTrend {
  name: string;
  points: BenchPoint[];
  /** What the inner band shows for this benchmark (the most common kind over its points). */
  spread: SpreadKind;
  /** Whether any point has a min–max range. */
  hasRange: boolean;
}

const SHORT_COMMIT = 7;

function ms(value: number | undefined): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value * 1000 : null;
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** "a1b2c3d" for a commit, else the run's time "12-07 10:15" (local time). */
export function pointLabel(r: Pick<BenchmarkResult, "commit" | "timestamp_ms">): string {
  if (r.commit) return r.commit.slice(0, SHORT_COMMIT);
  const d = new Date(r.timestamp_ms);
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function benchPoint(r: BenchmarkResult): BenchPoint & { kind: SpreadKind } {
  const s = r.stats;
  const median = ms(s.median) ?? ms(s.mean);
  let lo = ms(s.q1);
  let hi = ms(s.q3);
  let kind: SpreadKind = lo !== null && hi !== null ? "iqr" : null;
  if (kind === null) {
    const mean = ms(s.mean);
    const sd = ms(s.stddev);
    if (mean !== null && sd !== null) {
      lo = Math.max(0, mean - sd);
      hi = mean + sd;
      kind = "stddev";
    } else {
      lo = hi = null;
    }
  }
  return {
    label: pointLabel(r),
    commit: r.commit,
    timestamp_ms: r.timestamp_ms,
    machine: r.machine,
    median,
    lo,
    hi,
    min: ms(s.min),
    max: ms(s.max),
    kind,
  };
}

/** One trend per benchmark name (sorted), ok runs only, oldest first. */
export function benchmarkTrends(results: readonly BenchmarkResult[]): BenchTrend[] {
  const by = new Map<string, BenchmarkResult[]>();
  for (const r of results) {
    if (r.status !== "ok") continue;
    const list = by.get(r.name) ?? [];
    list.push(r);
    by.set(r.name, list);
  }
  return [...by.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, list]) => {
      const sorted = [...list].sort((a, b) => a.timestamp_ms - b.timestamp_ms);
      const withKind = sorted.map(benchPoint);
      const iqr = withKind.filter((p) => p.kind === "iqr").length;
      const sd = withKind.filter((p) => p.kind === "stddev").length;
      const spread: SpreadKind = iqr === 0 && sd === 0 ? null : iqr >= sd ? "iqr" : "stddev";
      const points = withKind.map(({ kind, ...p }) => (kind === spread ? p : { ...p, lo: null, hi: null }));
      return { name, points, spread, hasRange: points.some((p) => p.min !== null && p.max !== null) };
    });
}

/** The words for the inner band in the legend. */
export function spreadText(kind: SpreadKind): string {
  return kind === "iqr" ? "interquartile range (q1–q3)" : kind === "stddev" ? "mean ± stddev" : "";
}

/**
 * The indices whose labels fit on an axis `width` px wide with labels
 * `labelPx` apart: every k-th point, always the last one.
 */
export function labelIndices(count: number, width: number, labelPx = 64): number[] {
  if (count <= 0) return [];
  const room = Math.max(1, Math.floor(width / labelPx));
  const step = Math.max(1, Math.ceil(count / room));
  const out: number[] = [];
  for (let i = (count - 1) % step; i < count; i += step) out.push(i);
  return out;
}
