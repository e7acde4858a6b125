import { describe, expect, it } from "vitest";
import { benchmarkTrends, labelIndices, pointLabel } from "./gateBenchmarks";
import type { BenchmarkResult } from "./types";

function result(name: string, ts: number, commit: string | null, stats: Record<string, number>, status = "ok"): BenchmarkResult {
  return { name, source: "pytest-benchmark", timestamp_ms: ts, machine: "m1", commit, status, stats };
}

describe("benchmarkTrends", () => {
  it("gives each benchmark its ok runs oldest first with the median and the quartile band in ms", () => {
    const trends = benchmarkTrends([
      result("b_parse", 2000, "bbbbbbbbbb", { min: 0.008, q1: 0.009, median: 0.01, q3: 0.012, max: 0.02 }),
      result("a_load", 1000, null, { mean: 0.5, stddev: 0.1 }),
      result("b_parse", 1000, "aaaaaaaaaa", { min: 0.007, q1: 0.008, median: 0.009, q3: 0.01, max: 0.011 }),
      result("b_parse", 3000, "cccccccccc", { median: 1 }, "failed"),
    ]);
    expect(trends.map((t) => t.name)).toEqual(["a_load", "b_parse"]);
    const parse = trends[1];
    expect(parse.spread).toBe("iqr");
    expect(parse.hasRange).toBe(true);
    expect(parse.points.map((p) => p.label)).toEqual(["aaaaaaa", "bbbbbbb"]);
    expect(parse.points[1]).toMatchObject({ commit: "bbbbbbbbbb", median: 10, lo: 9, hi: 12, min: 8, max: 20 });
    const load = trends[0];
    expect(load.spread).toBe("stddev");
    expect(load.hasRange).toBe(false);
    expect(load.points[0].median).toBe(500);
    expect(load.points[0].lo).toBeCloseTo(400);
    expect(load.points[0].hi).toBeCloseTo(600);
  });

  it("draws one kind of band per benchmark: points of the other kind have none", () => {
    const [t] = benchmarkTrends([
      result("x", 1, "a", { q1: 0.001, q3: 0.002, median: 0.0015 }),
      result("x", 2, "b", { q1: 0.001, q3: 0.002, median: 0.0015 }),
      result("x", 3, "c", { mean: 0.002, stddev: 0.001 }),
      result("x", 4, "d", { median: 0.002 }),
    ]);
    expect(t.spread).toBe("iqr");
    expect(t.points.map((p) => p.lo !== null)).toEqual([true, true, false, false]);
  });
});

describe("pointLabel", () => {
  it("is the short commit, else the run's time", () => {
    expect(pointLabel({ commit: "0123456789abcdef", timestamp_ms: 0 })).toBe("0123456");
    expect(pointLabel({ commit: null, timestamp_ms: new Date(2026, 11, 7, 9, 5).getTime() })).toBe("12-07 09:05");
  });
});

describe("labelIndices", () => {
  it("thins labels to fit and always keeps the newest", () => {
    expect(labelIndices(5, 1000)).toEqual([0, 1, 2, 3, 4]);
    const thin = labelIndices(100, 320);
    expect(thin.length).toBeLessThanOrEqual(5);
    expect(thin[thin.length - 1]).toBe(99);
    expect(labelIndices(0, 300)).toEqual([]);
  });
});
