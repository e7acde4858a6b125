import { describe, expect, it } from "vitest";
import { boxAxis, isPerProcess, niceStep, splitProcesses } from "./correlation";
import type { Correlation } from "./types";

function corr(name: string, labels: Record<string, string>, effect: number, significant = false): Correlation {
  return {
    name,
    labels,
    effect_pct: effect,
    q_value: 0.01,
    ks_p: 0.01,
    mw_p: 0.01,
    volume_score: 1,
    onset_lag_ms: null,
    direction: "up",
    significant,
    n_inside: 10,
    n_quiet: 10,
    inside_median: 1,
    quiet_median: 1,
    inside_quantiles: [],
    quiet_quantiles: [],
  };
}

describe("per-process series", () => {
  it("are told apart by their pid label", () => {
    expect(isPerProcess({ host: "a", pid: "12", name: "python" })).toBe(true);
    expect(isPerProcess({ host: "a" })).toBe(false);
  });

  it("group by metric, process name and host, the strongest effect leading", () => {
    const { series, groups, perProcess } = splitProcesses([
      corr("cpu_percent", { host: "a" }, 10),
      corr("process_cpu_percent", { host: "a", pid: "1", name: "python" }, 5),
      corr("process_cpu_percent", { host: "a", pid: "2", name: "python" }, -30, true),
      corr("process_cpu_percent", { host: "a", pid: "3", name: "node" }, 2),
      corr("memory_rss_bytes", { host: "a", pid: "1", name: "python" }, 1),
    ]);
    expect(series.map((s) => s.name)).toEqual(["cpu_percent"]);
    expect(perProcess).toBe(4);
    expect(groups.map((g) => [g.name, g.process, g.members.length])).toEqual([
      ["process_cpu_percent", "python", 2],
      ["process_cpu_percent", "node", 1],
      ["memory_rss_bytes", "python", 1],
    ]);
    expect(groups[0].strongest.labels.pid).toBe("2");
    expect(groups[0].significant).toBe(1);
  });
});

describe("box plot axis", () => {
  it("reads a duration from 0 in ms, with round ticks", () => {
    const axis = boxAxis([-0.000445, 3.2, 7, 11.6], "milliseconds");
    expect(axis.lo).toBe(0);
    expect(axis.labels[0]).toBe("0 ms");
    expect(axis.hi).toBeGreaterThanOrEqual(11.6);
    expect(axis.labels).toEqual(["0 ms", "5 ms", "10 ms", "15 ms"]);
    expect(axis.labels.join(" ")).not.toMatch(/e-/);
  });

  it("switches to seconds for long durations", () => {
    expect(boxAxis([1200, 4800], "milliseconds").labels).toEqual(["0 s", "2 s", "4 s", "6 s"]);
  });

  it("writes percentages, bytes and plain numbers with their units", () => {
    expect(boxAxis([12, 57], "percent").labels).toEqual(["0%", "20%", "40%", "60%"]);
    expect(boxAxis([0.1, 0.35], "ratio").labels.at(-1)).toBe("40%");
    expect(boxAxis([300 * 1024 * 1024, 900 * 1024 * 1024], "bytes").labels.at(-1)).toBe("1000 MiB");
    const plain = boxAxis([-3, 4], null);
    expect(plain.lo).toBeLessThanOrEqual(-3);
    expect(plain.labels).toContain("0");
  });

  it("survives flat and empty data", () => {
    expect(boxAxis([], "percent").labels[0]).toMatch(/^0(\.0+)?%$/);
    expect(boxAxis([5, 5], null).ticks.length).toBeGreaterThan(1);
    expect(niceStep(0)).toBe(1);
  });
});
