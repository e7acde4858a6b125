import { describe, expect, it } from "vitest";
import {
  findingsNear,
  mergeSample,
  mergeSamples,
  nearestIndex,
  quantileScale,
  scanAt,
  stepFor,
  toChartData,
  toLive,
  trimBefore,
} from "./series";
import type { FindingMark, QuerySeries, ScanWindow } from "./types";

function series(): QuerySeries {
  return {
    name: "cpu_percent",
    labels: { host: "a" },
    timestamps_ms: [0, 1000, 2000],
    avg: [10, 20, 30],
    min: [5, 15, 25],
    max: [15, 25, 35],
  };
}

describe("merging live samples into a downsampled series", () => {
  it("folds a sample inside the last bucket into min, max and the running average", () => {
    const s = toLive(series());
    expect(mergeSample(s, 2500, 50, 1000)).toBe(true);
    expect(s.timestamps_ms).toEqual([0, 1000, 2000]);
    expect(s.avg[2]).toBe(40);
    expect(s.max[2]).toBe(50);
    expect(s.min[2]).toBe(25);
    expect(s.counts[2]).toBe(2);
  });
  it("opens a new bucket after the last one and ignores samples older than it", () => {
    const s = toLive(series());
    expect(mergeSample(s, 3000, 7, 1000)).toBe(true);
    expect(s.timestamps_ms.at(-1)).toBe(3000);
    expect([s.min.at(-1), s.max.at(-1), s.avg.at(-1)]).toEqual([7, 7, 7]);
    expect(mergeSample(s, 500, 99, 1000)).toBe(false);
    expect(mergeSample(s, 4000, Number.NaN, 1000)).toBe(false);
  });
  it("starts an empty series", () => {
    const s = toLive({ ...series(), timestamps_ms: [], avg: [], min: [], max: [] });
    expect(mergeSample(s, 10, 1, 1000)).toBe(true);
    expect(s.timestamps_ms).toEqual([10]);
  });
  it("takes only samples of the same metric and labels, in time order", () => {
    const s = toLive(series());
    const merged = mergeSamples(
      s,
      [
        { name: "cpu_percent", labels: { host: "a" }, timestamp_ms: 5000, value: 1 },
        { name: "cpu_percent", labels: { host: "a" }, timestamp_ms: 4000, value: 2 },
        { name: "cpu_percent", labels: { host: "b" }, timestamp_ms: 6000, value: 3 },
        { name: "memory_percent", labels: { host: "a" }, timestamp_ms: 7000, value: 4 },
      ],
      1000,
    );
    expect(merged).toBe(2);
    expect(s.timestamps_ms).toEqual([0, 1000, 2000, 4000, 5000]);
  });
  it("keeps a host total apart from its per-core series", () => {
    const s = toLive(series());
    const merged = mergeSamples(
      s,
      [
        { name: "cpu_percent", labels: { host: "a", cpu: "1" }, timestamp_ms: 5000, value: 100 },
        { name: "cpu_percent", labels: { host: "a" }, timestamp_ms: 5000, value: 12 },
      ],
      1000,
    );
    expect(merged).toBe(1);
    expect(s.avg.at(-1)).toBe(12);
  });
  it("takes only samples inside the given range (a paused chart)", () => {
    const s = toLive(series());
    const batch = [{ name: "cpu_percent", labels: { host: "a" }, timestamp_ms: 9000, value: 1 }];
    expect(mergeSamples(s, batch, 1000, 0, 3000)).toBe(0);
    expect(s.timestamps_ms).toHaveLength(3);
    expect(mergeSamples(s, batch, 1000, 0, 9000)).toBe(1);
  });
  it("does not alias the API series", () => {
    const q = series();
    const s = toLive(q);
    mergeSample(s, 9000, 1, 1000);
    expect(q.timestamps_ms).toHaveLength(3);
  });
  it("trims buckets before the window start", () => {
    const s = toLive(series());
    trimBefore(s, 1500);
    expect(s.timestamps_ms).toEqual([2000]);
    expect(s.counts).toHaveLength(1);
  });
  it("gives uPlot seconds and min, max, avg", () => {
    const [x, lo, hi, avg] = toChartData(series());
    expect(x).toEqual([0, 1, 2]);
    expect(lo[0]).toBe(5);
    expect(hi[0]).toBe(15);
    expect(avg[0]).toBe(10);
  });
  it("computes the bucket width", () => {
    expect(stepFor(86_400_000, 1000)).toBe(86_400);
    expect(stepFor(0, 1000)).toBe(1);
  });
});

describe("what sits under the cursor", () => {
  const scans: ScanWindow[] = [
    { scan_id: "s1", start_ms: 1000, end_ms: 2000, violations: 3, new_findings: 1 },
    { scan_id: "s2", start_ms: 5000, end_ms: null, violations: 0, new_findings: 0 },
  ];
  it("finds the scan running at a time, open windows running until now", () => {
    expect(scanAt(scans, 1500, 10_000)?.scan_id).toBe("s1");
    expect(scanAt(scans, 3000, 10_000)).toBeNull();
    expect(scanAt(scans, 9000, 10_000)?.scan_id).toBe("s2");
    expect(scanAt(scans, 11_000, 10_000)).toBeNull();
  });
  it("lists findings near a time, nearest first", () => {
    const f = (ts: number): FindingMark => ({ ts_ms: ts, fingerprint: String(ts), severity: "high", rule_id: "B1", path: "a.py" });
    const near = findingsNear([f(100), f(1000), f(1050), f(5000)], 1040, 100);
    expect(near.map((x) => x.ts_ms)).toEqual([1050, 1000]);
  });
  it("finds the nearest index in sorted timestamps", () => {
    expect(nearestIndex([], 5)).toBe(-1);
    expect(nearestIndex([0, 10, 20], 14)).toBe(1);
    expect(nearestIndex([0, 10, 20], 16)).toBe(2);
    expect(nearestIndex([0, 10, 20], 99)).toBe(2);
    expect(nearestIndex([0, 10, 20], -5)).toBe(0);
  });
  it("pads a shared quantile scale and handles flat data", () => {
    const [lo, hi] = quantileScale([1, 2, 3, 4, 5], [2, 3, 4, 5, 11]);
    expect(lo).toBeLessThan(1);
    expect(hi).toBeGreaterThan(11);
    expect(quantileScale([2, 2], [2])).toEqual([0.9, 3.1]);
    expect(quantileScale([], [])).toEqual([0, 1]);
  });
});
