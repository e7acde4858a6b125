import { describe, expect, it } from "vitest";
import {
  bandAt,
  budgetText,
  clipStretch,
  deltaPercent,
  filenameFromDisposition,
  formatWait,
  liveThrottleText,
  medianAbsPercentError,
  pacingFacts,
  perScannerRows,
  predictionHistory,
  predictionText,
  reportFallbackName,
  reportQuery,
  scheduleDetail,
  scheduleText,
  throttleBands,
  throttleSummary,
  utcSlot,
  withinBudgetText,
} from "./pacing";
import type { ScanJson, ScanPacing, ScanPrediction, ScanWindow, Schedule, SecurityMetrics } from "./types";

const T0 = Date.UTC(2026, 11, 8, 2, 0, 0); // a Tuesday, 02:00 UTC
const REASON = "response_time_ms{job=\"api\"} +23 % over its level before the scan (budget 10 %)";

function pacing(over: Partial<ScanPacing> = {}): ScanPacing {
  return {
    priority: "low",
    budget: { state: "on", reason: null, max_increase_pct: 10, guards: [] },
    throttled_ms: 12_300,
    stretches: [
      { start_ms: T0 + 1000, end_ms: T0 + 3000, action: "fewer_workers", reason: "cpu busy" },
      { start_ms: T0 + 5000, end_ms: T0 + 15_300, action: "pause", reason: REASON },
    ],
    deadline_ms: T0 + 100_000,
    deadline_reached: false,
    within_budget: true,
    ...over,
  };
}

function windowOf(over: Partial<ScanWindow> = {}): ScanWindow {
  return { scan_id: "s1", start_ms: T0, end_ms: T0 + 20_000, violations: 0, new_findings: 0, ...over };
}

describe("throttled stretches inside scan windows", () => {
  it("clips a stretch to its scan's window", () => {
    const s = { start_ms: T0 - 5000, end_ms: T0 + 5000, action: "pause", reason: "" };
    expect(clipStretch(s, T0, T0 + 20_000)).toEqual({ start_ms: T0, end_ms: T0 + 5000 });
    const tail = { start_ms: T0 + 15_000, end_ms: T0 + 90_000, action: "pause", reason: "" };
    expect(clipStretch(tail, T0, T0 + 20_000)).toEqual({ start_ms: T0 + 15_000, end_ms: T0 + 20_000 });
  });
  it("drops stretches outside the window, empty or with bad times", () => {
    expect(clipStretch({ start_ms: T0 + 30_000, end_ms: T0 + 40_000, action: "pause", reason: "" }, T0, T0 + 20_000)).toBeNull();
    expect(clipStretch({ start_ms: T0 + 5000, end_ms: T0 + 5000, action: "pause", reason: "" }, T0, T0 + 20_000)).toBeNull();
    expect(clipStretch({ start_ms: T0 + 9000, end_ms: T0 + 5000, action: "pause", reason: "" }, T0, T0 + 20_000)).toBeNull();
    expect(clipStretch({ start_ms: Number.NaN, end_ms: T0, action: "pause", reason: "" }, T0, T0 + 20_000)).toBeNull();
  });
  it("ends a running scan's window at now and sorts every scan's bands by start", () => {
    const running = windowOf({
      scan_id: "s2",
      start_ms: T0 + 30_000,
      end_ms: null,
      pacing: pacing({ stretches: [{ start_ms: T0 + 31_000, end_ms: T0 + 99_000, action: "pause", reason: "r" }] }),
    });
    const bands = throttleBands([running, windowOf({ pacing: pacing() }), windowOf({ scan_id: "none" })], T0 + 40_000);
    expect(bands.map((b) => [b.scan_id, b.start_ms - T0, b.end_ms - T0])).toEqual([
      ["s1", 1000, 3000],
      ["s1", 5000, 15_300],
      ["s2", 31_000, 40_000],
    ]);
    expect(bandAt(bands, T0 + 6000)?.reason).toBe(REASON);
    expect(bandAt(bands, T0 + 4000)).toBeNull();
  });
});

describe("what the budget did, in words", () => {
  it("names the longest stretch's action and reason", () => {
    expect(throttleSummary(pacing())).toBe(`throttled 12.3 s in 2 stretches (paused: ${REASON})`);
    const one = pacing({ stretches: [pacing().stretches[1]] });
    expect(throttleSummary(one)).toBe(`throttled 12.3 s (paused: ${REASON})`);
  });
  it("says when a scan was not throttled, and nothing without a document", () => {
    expect(throttleSummary(pacing({ throttled_ms: 0, stretches: [] }))).toBe("not throttled");
    expect(throttleSummary(null)).toBeNull();
  });
  it("states priority, budget on/off with its reason, and adherence", () => {
    expect(pacingFacts(pacing())).toBe("priority low · budget on (max +10 %) · within budget");
    const off = pacing({
      priority: "normal",
      budget: { state: "off", reason: "guard latency{job=\"x\"} matches no series", max_increase_pct: 10, guards: [] },
      within_budget: null,
    });
    expect(budgetText(off)).toBe('budget off: guard latency{job="x"} matches no series');
    expect(withinBudgetText(off)).toBeNull();
    expect(pacingFacts(off)).toBe('priority normal · budget off: guard latency{job="x"} matches no series');
    expect(withinBudgetText(pacing({ within_budget: false }))).toBe("over budget");
    expect(budgetText(pacing({ budget: null }))).toBe("no impact budget");
    expect(pacingFacts(pacing({ deadline_reached: true }))).toContain("deadline reached");
  });
});

describe("a running scan's throttling, live", () => {
  it("says what holds the scan back, or that it runs at full pace again", () => {
    const t = { scan_id: "s", action: "pause", reason: REASON, throttled_ms: 12_300 };
    expect(liveThrottleText(t)).toBe(`held back (paused: ${REASON}), throttled 12.3 s so far`);
    expect(liveThrottleText({ ...t, action: "resume" })).toBe("back to full pace, throttled 12.3 s so far");
    expect(liveThrottleText(null)).toBeNull();
  });
});

describe("predicted against actual", () => {
  it("shows the actual, the prediction and the signed difference", () => {
    expect(predictionText(4100, 3800)).toBe("4.10 s (predicted 3.80 s, +8 %)");
    expect(predictionText(3500, 4000)).toBe("3.50 s (predicted 4.00 s, -13 %)");
    expect(predictionText(4000, 4000)).toBe("4.00 s (predicted 4.00 s, ±0 %)");
    expect(predictionText(null, 3800)).toBe("predicted 3.80 s");
    expect(predictionText(4100, null)).toBe("4.10 s");
    expect(deltaPercent(100, 0)).toBeNull();
  });
  it("lists every scanner either side names", () => {
    const prediction = {
      duration_ms: 5000,
      per_scanner: { bandit: { duration_ms: 4000, cpu_s: 7 }, secrets: { duration_ms: 1000, cpu_s: 1 } },
    } as unknown as ScanPrediction;
    const metrics = { scanner_durations_ms: { bandit: 4400, deps: 200 } } as unknown as SecurityMetrics;
    expect(perScannerRows(prediction, metrics).map((r) => [r.scanner, r.text])).toEqual([
      ["bandit", "4.40 s (predicted 4.00 s, +10 %)"],
      ["deps", "200 ms"],
      ["secrets", "predicted 1.00 s"],
    ]);
  });
  it("keeps the last n finished scans of the target with a prediction, oldest first", () => {
    const scan = (id: string, start: number, target: string, actual: number | null, predicted: number | null): ScanJson => ({
      scan_id: id,
      target,
      status: actual === null ? "running" : "ok",
      started_ms: start,
      finished_ms: actual === null ? null : start + actual,
      metrics: null,
      cost: null,
      prediction: predicted === null ? null : ({ duration_ms: predicted } as ScanPrediction),
    });
    const scans = [
      scan("new", 500, "app", 1100, 1000),
      scan("run", 600, "app", null, 1000),
      scan("other", 400, "lib", 1000, 1000),
      scan("nopred", 300, "app", 1000, null),
      scan("b", 200, "app", 900, 1000),
      scan("a", 100, "app", 1000, 1000),
    ];
    const points = predictionHistory(scans, "app", 2);
    expect(points.map((p) => p.scan_id)).toEqual(["b", "new"]);
    expect(medianAbsPercentError(predictionHistory(scans, "app", 10))).toBeCloseTo(100 / 11, 5);
    expect(medianAbsPercentError([])).toBeNull();
  });
});

describe("the next planned scan", () => {
  const schedule = (over: Partial<Schedule>): Schedule => ({
    next_scan_ms: null,
    reason: "",
    quiet_now: false,
    every_ms: 3_600_000,
    max_delay_ms: 7_200_000,
    profile: [],
    ...over,
  });
  it("names the slot once, in UTC, with the server's reason", () => {
    const next = T0 + 3_600_000; // Tue 03:00 UTC
    expect(utcSlot(next)).toBe("Tue 03:00 UTC");
    const s = schedule({ next_scan_ms: next, reason: "quietest hour in the next 2 h: Tue 03:00 UTC" });
    expect(scheduleText(s, next - 42 * 60_000)).toBe("next scan in 42 min (Tue 03:00 UTC, quietest hour in the next 2 h)");
    expect(scheduleText({ ...s, reason: "" }, next - 42 * 60_000)).toBe("next scan in 42 min (Tue 03:00 UTC)");
    expect(scheduleText(s, next + 1000)).toBe("next scan due now (Tue 03:00 UTC, quietest hour in the next 2 h)");
    const measured = { ...s, reason: "quietest hour in the next 2 h: Tue 03:00 UTC (host CPU 62 now, quiet at ≤ 6)" };
    expect(scheduleText(measured, next - 42 * 60_000)).toBe(
      "next scan in 42 min (Tue 03:00 UTC, quietest hour in the next 2 h (host CPU 62 now, quiet at ≤ 6))",
    );
  });
  it("says scans run now when the host is quiet", () => {
    expect(scheduleText(schedule({ quiet_now: true, next_scan_ms: T0 }), T0)).toBe("scans when quiet: now");
    expect(scheduleText(schedule({ quiet_now: true }), T0)).toBe("scans when quiet: now");
    expect(scheduleDetail(schedule({ quiet_now: true, reason: "quiet now (host CPU 4 ≤ 12)" }))).toBe(
      "quiet now (host CPU 4 ≤ 12) · every 1 h · waits at most 2 h for a quiet time",
    );
  });
  it("hides when nothing is planned", () => {
    expect(scheduleText(schedule({}), T0)).toBeNull();
    expect(scheduleText(null, T0)).toBeNull();
    expect(scheduleDetail(schedule({}))).toBe("every 1 h · waits at most 2 h for a quiet time");
    expect(scheduleDetail(schedule({ every_ms: null, max_delay_ms: null }))).toBeNull();
  });
  it("formats waits", () => {
    expect(formatWait(30_000)).toBe("30 s");
    expect(formatWait(125 * 60_000)).toBe("2 h 05 min");
    expect(formatWait(26 * 3_600_000)).toBe("1 d 2 h");
  });
});

describe("report download", () => {
  it("builds the query from period, target and format", () => {
    expect(reportQuery(90, "webapp", "pdf")).toEqual({ since: "90d", format: "pdf", target: "webapp" });
    expect(reportQuery(30, "", "json")).toEqual({ since: "30d", format: "json" });
  });
  it("takes the file name from Content-Disposition, never a path", () => {
    expect(filenameFromDisposition('attachment; filename="report-90d.html"', "x")).toBe("report-90d.html");
    expect(filenameFromDisposition("attachment; filename=report.json", "x")).toBe("report.json");
    expect(filenameFromDisposition("attachment; filename*=UTF-8''r%C3%A9port.pdf; filename=\"r.pdf\"", "x")).toBe("réport.pdf");
    expect(filenameFromDisposition('attachment; filename="../../etc/passwd"', "x")).toBe("passwd");
    expect(filenameFromDisposition("attachment", "fallback.html")).toBe("fallback.html");
    expect(filenameFromDisposition(null, "fallback.html")).toBe("fallback.html");
    expect(reportFallbackName(90, "my app/x", "html")).toBe("secperf-report-my-app-x-90d.html");
    expect(reportFallbackName(30, "", "pdf")).toBe("secperf-report-all-30d.pdf");
  });
});
