import { describe, expect, it } from "vitest";
import { toCSV } from "./export";
import {
  TARGET_COLUMNS,
  isStale,
  lastScanMs,
  nameMatches,
  openFindings,
  pickerOptions,
  sortHosts,
  sortTargets,
  targetRowView,
  STALE_MS,
} from "./fleet";
import type { FleetHost, FleetTarget } from "./types";

function target(name: string, counts: Record<string, number>, lastMs: number | null): FleetTarget {
  return {
    target: name,
    last_scan:
      lastMs === null
        ? null
        : { scan_id: `s-${name}`, target: name, status: "ok", started_ms: lastMs - 1000, finished_ms: lastMs, metrics: null, cost: null },
    findings: {
      scan_id: lastMs === null ? null : `s-${name}`,
      severity_counts: { critical: 0, high: 0, medium: 0, low: 0, info: 0, ...counts },
      violations: Object.values(counts).reduce((a, b) => a + b, 0),
      new_findings: 0,
    },
    gate: null,
    scan_cost: null,
    alerts: { firing: 0, silenced: 0 },
  };
}

function host(name: string, cpu: number | null, seen: number | null): FleetHost {
  return {
    host: name,
    latest: { cpu_percent: cpu, memory_percent: null, load_1m: null },
    last_seen_ms: seen,
    alerts: { firing: 0, silenced: 0 },
  };
}

describe("fleet targets", () => {
  const rows = [
    target("web", { low: 9 }, 3000),
    target("api", { critical: 1 }, 1000),
    target("docs", {}, null),
    target("App10", { low: 9 }, 2000),
  ];

  it("adds up open findings and reads the last scan's time", () => {
    expect(openFindings(rows[0])).toBe(9);
    expect(lastScanMs(rows[0])).toBe(3000);
    expect(lastScanMs(rows[2])).toBeNull();
  });

  it("sorts by name, findings (severity first) and last scan, missing last", () => {
    expect(sortTargets(rows, "name", "ascending").map((t) => t.target)).toEqual(["api", "App10", "docs", "web"]);
    expect(sortTargets(rows, "name", "descending").map((t) => t.target)).toEqual(["web", "docs", "App10", "api"]);
    expect(sortTargets(rows, "findings", "descending").map((t) => t.target)).toEqual(["api", "App10", "web", "docs"]);
    expect(sortTargets(rows, "findings", "ascending").map((t) => t.target)).toEqual(["docs", "App10", "web", "api"]);
    expect(sortTargets(rows, "last_scan", "descending").map((t) => t.target)).toEqual(["web", "App10", "api", "docs"]);
    expect(sortTargets(rows, "last_scan", "ascending").map((t) => t.target)).toEqual(["api", "App10", "web", "docs"]);
  });

  it("exports one CSV line per target with every severity", () => {
    const csv = toCSV([rows[1]], TARGET_COLUMNS).split("\r\n");
    expect(csv[0]).toContain("target,last_scan_id,last_scan_status,last_scan_ms,open_findings,critical,high");
    expect(csv[1].startsWith("api,s-api,ok,1000,1,1,0")).toBe(true);
  });
});

describe("fleet hosts", () => {
  it("marks hosts not seen for five minutes stale", () => {
    const now = 10 * STALE_MS;
    expect(isStale(host("a", 1, now - 1000), now)).toBe(false);
    expect(isStale(host("a", 1, now - STALE_MS - 1), now)).toBe(true);
    expect(isStale(host("a", null, null), now)).toBe(true);
  });

  it("sorts by CPU with hosts without a value last", () => {
    const rows = [host("b", 10, 1), host("a", null, 2), host("c", 90, 3)];
    expect(sortHosts(rows, "cpu", "descending").map((h) => h.host)).toEqual(["c", "b", "a"]);
    expect(sortHosts(rows, "cpu", "ascending").map((h) => h.host)).toEqual(["b", "c", "a"]);
    expect(sortHosts(rows, "name", "ascending").map((h) => h.host)).toEqual(["a", "b", "c"]);
  });
});

describe("filter and pickers", () => {
  it("filters names by a case-insensitive substring", () => {
    expect(nameMatches("Payments-API", "api")).toBe(true);
    expect(nameMatches("web", " ")).toBe(true);
    expect(nameMatches("web", "api")).toBe(false);
  });

  it("keeps a name from the URL the server does not list", () => {
    expect(pickerOptions(["api", "web"], "")).toEqual(["api", "web"]);
    expect(pickerOptions(["api", "web"], "web")).toEqual(["api", "web"]);
    expect(pickerOptions(["api"], "gone")).toEqual(["api", "gone"]);
  });
});

describe("targetRowView", () => {
  const now = Date.UTC(2026, 0, 1, 12, 0, 0);

  it("gives a badge only for the severities with findings, most severe first", () => {
    const row = targetRowView(target("api", { low: 2, critical: 1 }, now - 3 * 60_000), now);
    expect(row.total).toBe(3);
    expect(row.sevs).toEqual([
      { sev: "critical", short: "C", n: 1 },
      { sev: "low", short: "L", n: 2 },
    ]);
    expect(row.ago).toBe("3 min ago");
    expect(row.status).toBe("ok");
    expect(row.gate).toBeNull();
    expect(row.cost).toBeNull();
  });

  it("says never for a target never scanned, and words the gate and the scan cost", () => {
    const never = targetRowView(target("web", {}, null), now);
    expect(never.ago).toBeNull();
    expect(never.sevs).toEqual([]);
    const t = target("db", {}, now);
    t.gate = { run_id: "g1", verdict: "block", finished_ms: now, commit: null };
    t.scan_cost = { scan_id: "s-db", duration_ms: 120_000, cpu_seconds: 1.5 };
    const row = targetRowView(t, now);
    expect(row.gate?.text).toBe("block");
    expect(row.gate?.title).toMatch(/^gate run g1, \d{4}-\d\d-\d\d /);
    expect(row.cost).toBe("2m 00s");
    expect(row.cpu).toBe("1.5 CPU s");
  });
});
