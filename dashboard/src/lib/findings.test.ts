import { describe, expect, it } from "vitest";
import { firstSeenIn, matchesSearch, parseSortDir, parseSortKey, sortFindings, type FindingRow } from "./findings";
import type { Severity } from "./types";

function finding(rule: string, severity: Severity, path: string, first: number | null, scanner = "bandit"): FindingRow {
  return {
    fingerprint: `${rule}-${path}`,
    rule_id: rule,
    scanner,
    severity,
    message: `problem in ${rule}`,
    path,
    line: 1,
    end_line: null,
    column: null,
    category: "sast",
    confidence: null,
    cwe: null,
    snippet: null,
    help_url: null,
    properties: {},
    state: "open",
    is_new: false,
    scan_id: "s",
    triage: null,
    first_seen_ms: first,
  };
}

const rows = [
  finding("A", "low", "a.py", 100),
  finding("B", "critical", "z.py", 300),
  finding("C", "critical", "y.py", 200),
  finding("D", "high", "b.py", null, "secrets"),
  finding("E", "high", "c.py", 50, "semgrep"),
];

describe("sortFindings", () => {
  it("orders by severity, worst first, then the oldest first seen first", () => {
    expect(sortFindings(rows, "severity", "desc").map((f) => f.rule_id)).toEqual(["C", "B", "E", "D", "A"]);
  });

  it("reverses the chosen column and keeps the default order for ties", () => {
    expect(sortFindings(rows, "severity", "asc").map((f) => f.rule_id)).toEqual(["A", "E", "D", "C", "B"]);
    expect(sortFindings(rows, "path", "asc").map((f) => f.path)).toEqual(["a.py", "b.py", "c.py", "y.py", "z.py"]);
    expect(sortFindings(rows, "scanner", "desc").map((f) => f.rule_id)).toEqual(["E", "D", "C", "B", "A"]);
  });

  it("sorts a finding no complete scan dated as the newest", () => {
    expect(sortFindings(rows, "first_seen", "asc").map((f) => f.rule_id)).toEqual(["E", "A", "C", "B", "D"]);
    expect(sortFindings(rows, "first_seen", "desc")[0].rule_id).toBe("D");
  });
});

describe("matchesSearch", () => {
  it("needs every word in the rule, message, path or scanner, ignoring case", () => {
    expect(rows.filter((f) => matchesSearch(f, "PROBLEM y.py")).map((f) => f.rule_id)).toEqual(["C"]);
    expect(rows.filter((f) => matchesSearch(f, "semgrep")).map((f) => f.rule_id)).toEqual(["E"]);
    expect(rows.filter((f) => matchesSearch(f, "  ")).length).toBe(5);
    expect(rows.filter((f) => matchesSearch(f, "nothing-like-this")).length).toBe(0);
  });
});

describe("firstSeenIn", () => {
  it("keeps findings first seen inside the window, bounds included", () => {
    const w = { start_ms: 100, end_ms: 200 };
    expect(rows.filter((f) => firstSeenIn(f, w)).map((f) => f.rule_id)).toEqual(["A", "C"]);
  });
});

describe("URL sort params", () => {
  it("falls back to the default on unknown text", () => {
    expect(parseSortKey("bogus")).toBe("severity");
    expect(parseSortKey("path")).toBe("path");
    expect(parseSortDir(null, "first_seen")).toBe("asc");
    expect(parseSortDir("sideways", "severity")).toBe("desc");
    expect(parseSortDir("asc", "severity")).toBe("asc");
  });
});
