import { describe, expect, it } from "vitest";
import {
  dateInputToMs,
  formatBytes,
  formatDuration,
  formatLabels,
  formatNumber,
  formatRatio,
  formatWithUnit,
  labelsMatch,
  metricUnit,
  severityRank,
} from "./format";
import { parseHash } from "./router.svelte";
import { queryString } from "./api";

describe("formatNumber", () => {
  it("keeps small integers and trims trailing zeros", () => {
    expect(formatNumber(0)).toBe("0");
    expect(formatNumber(42)).toBe("42");
    expect(formatNumber(1.5)).toBe("1.5");
    expect(formatNumber(3.14159)).toBe("3.14");
  });
  it("abbreviates large values", () => {
    expect(formatNumber(12_345)).toBe("12.3k");
    expect(formatNumber(2_500_000)).toBe("2.5M");
  });
  it("shows missing values as a dash", () => {
    expect(formatNumber(null)).toBe("—");
    expect(formatNumber(Number.NaN)).toBe("—");
  });
});

describe("durations and units", () => {
  it("formats durations across scales", () => {
    expect(formatDuration(850)).toBe("850 ms");
    expect(formatDuration(1234)).toBe("1.23 s");
    expect(formatDuration(65_000)).toBe("1m 05s");
    expect(formatDuration(2 * 3600_000 + 3 * 60_000)).toBe("2h 03m");
  });
  it("formats by metric unit", () => {
    expect(formatWithUnit(12.345, "percent")).toBe("12.3%");
    expect(formatWithUnit(0.25, "ratio")).toBe("25.00%");
    expect(formatWithUnit(2048, "bytes")).toBe("2.0 KiB");
    expect(formatBytes(5 * 1024 * 1024)).toBe("5.0 MiB");
    expect(formatRatio(0.125)).toBe("12.5%");
  });
  it("knows the units of secperf's metrics", () => {
    expect(metricUnit("cpu_percent")).toBe("percent");
    expect(metricUnit("response_time_ms")).toBe("milliseconds");
    expect(metricUnit("net_sent_bytes")).toBe("bytes_per_second");
    expect(metricUnit("my_app_counter")).toBeNull();
  });
});

describe("labels and severities", () => {
  it("formats labels sorted by name", () => {
    expect(formatLabels({ b: "2", a: "1" })).toBe("a=1, b=2");
  });
  it("matches a wanted label subset", () => {
    expect(labelsMatch({ host: "a" }, { host: "a", cpu: "total" })).toBe(true);
    expect(labelsMatch({ host: "a" }, { host: "b" })).toBe(false);
  });
  it("orders severities", () => {
    expect(severityRank("critical")).toBeGreaterThan(severityRank("high"));
    expect(severityRank("nonsense")).toBe(-1);
  });
});

describe("inputs", () => {
  it("turns a date input into the end of that day", () => {
    const ms = dateInputToMs("2030-01-31");
    expect(ms).not.toBeNull();
    const d = new Date(ms!);
    expect([d.getFullYear(), d.getMonth(), d.getDate(), d.getHours()]).toEqual([2030, 0, 31, 23]);
    expect(dateInputToMs("31/01/2030")).toBeNull();
    expect(dateInputToMs("")).toBeNull();
  });
  it("builds query strings with repeated keys and no empty values", () => {
    expect(queryString({ state: ["firing", "pending"], q: "", n: 5, x: null })).toBe("?state=firing&state=pending&n=5");
    expect(queryString({})).toBe("");
  });
  it("parses hash routes with parameters and falls back to the overview", () => {
    const r = parseHash("#/findings?severity=high");
    expect(r.view).toBe("findings");
    expect(r.params.get("severity")).toBe("high");
    expect(parseHash("#/nowhere").view).toBe("overview");
    expect(parseHash("").view).toBe("overview");
  });
});
