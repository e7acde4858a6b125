import { describe, expect, it } from "vitest";
import { findingsHref, overviewTitle, performanceHref, readContext, splitFiring, statusText, type OverviewNamed } from "./alerts";

const scan = {
  scan_id: "s1",
  target: "api",
  host: "web-1",
  started_ms: 1000,
  finished_ms: 5000,
  status: "ok",
  scanners: ["bandit"],
  violations: 3,
  new_findings: 1,
};

describe("alert context", () => {
  it("reads the scan, its findings and the host's state, keeping unknown keys", () => {
    const read = readContext({
      security: {
        scope: { target: "api", host: null },
        latest_scan: { ...scan, pacing: null },
        scan_running: null,
        new_findings: [{ fingerprint: "f", rule_id: "R1", scanner: "bandit", severity: "high", path: "a.py", line: 3 }],
        scans: [scan, { ...scan, scan_id: "s0" }],
        odd: 1,
      },
      performance: { recent: null, host: "web-1", load: { cpu_percent: 80, memory_percent: 40, load_1m: 2, swap: 5 } },
      text: "no security scan was running",
      extra_key: { a: 1 },
    });
    expect(read.scan?.scan_id).toBe("s1");
    expect(read.scanRole).toBe("latest");
    expect(read.otherScans.map((s) => s.scan_id)).toEqual(["s0"]);
    expect(read.findings[0].rule_id).toBe("R1");
    expect(read.host).toBe("web-1");
    expect(read.load).toEqual({ cpu_percent: 80, memory_percent: 40, load_1m: 2 });
    expect(read.text).toBe("no security scan was running");
    expect(read.extra).toEqual([
      { key: "extra_key", value: '{"a":1}' },
      { key: "security.odd", value: "1" },
      { key: "performance.load.swap", value: "5" },
    ]);
  });

  it("prefers the scan running when the alert fired", () => {
    const read = readContext({ security: { latest_scan: scan, scan_running: { ...scan, scan_id: "s2", finished_ms: null } } });
    expect(read.scan?.scan_id).toBe("s2");
    expect(read.scanRole).toBe("running");
    expect(read.otherScans.map((s) => s.scan_id)).toEqual(["s1"]);
  });

  it("keeps a context of an unexpected shape as text", () => {
    expect(readContext("odd").extra).toEqual([{ key: "context", value: "odd" }]);
    expect(readContext(null).extra).toEqual([]);
  });
});

describe("links", () => {
  it("opens Performance for the host over an absolute range around the alert", () => {
    const href = performanceHref(new URLSearchParams("target=api&from=now-1h&to=now"), "web-1", 10_000_000, 20_000_000);
    const params = new URLSearchParams(href.split("?")[1]);
    expect(href.startsWith("#/performance?")).toBe(true);
    expect(params.get("host")).toBe("web-1");
    expect(params.get("target")).toBe("api");
    expect(Number(params.get("from"))).toBe(10_000_000 - 1_800_000);
    expect(Number(params.get("to"))).toBe(10_000_000 + 1_800_000);
    // Never past now.
    const capped = new URLSearchParams(performanceHref(new URLSearchParams(), null, 10_000_000, 10_600_000).split("?")[1]);
    expect(Number(capped.get("to"))).toBe(10_600_000);
    expect(capped.get("host")).toBeNull();
  });

  it("opens Findings of the scan's target", () => {
    expect(findingsHref(new URLSearchParams("from=now-1h&to=now"), scan, { new: "true" })).toBe("#/findings?target=api&from=now-1h&to=now&scan=s1&new=true");
  });
});

describe("alert texts", () => {
  it("separates acknowledgement and silence", () => {
    expect(statusText({ acknowledged_by: "checker", silenced: true })).toBe("ack: checker · silenced");
    expect(statusText({ acknowledged_by: null, silenced: true })).toBe("silenced");
    expect(statusText({ acknowledged_by: null, silenced: false })).toBe("");
  });

  it("leaves silenced alerts out of the firing list", () => {
    const { shown, silenced } = splitFiring([{ silenced: true }, { silenced: false }, {}]);
    expect(shown.length).toBe(2);
    expect(silenced).toBe(1);
  });

  it("names the overview's target", () => {
    const ov = {
      target: "api",
      security: { last_scan: { ...scan, metrics: null, cost: null } },
      alerts: { firing: [], pending: 0 },
    } as unknown as OverviewNamed;
    expect(overviewTitle(ov, "", 5000 + 300_000)).toEqual({ target: "api", detail: "last scanned 5 min ago" });
    const empty = { target: null, security: { last_scan: null }, alerts: { firing: [], pending: 0 } } as unknown as OverviewNamed;
    expect(overviewTitle(empty, "", 0)).toEqual({ target: "all targets", detail: "no scan yet" });
  });
});
