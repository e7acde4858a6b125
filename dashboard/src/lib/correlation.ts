// Correlations: per-process series grouped and set apart, and a box plot
// axis with units and round ticks. Pure functions: tested in correlation.test.ts.

import { formatLabels } from "./format";
import type { Correlation } from "./types";

/** Labels that make a series one process's (the process collector's `pid`, `name`). */
export function isPerProcess(labels: Record<string, string>): boolean {
  return "pid" in labels;
}

/** One metric of one process name (on one host), over every PID it had. */
export interface ProcessGroup {
  key: string;
  name: string;
  process: string;
  host: string | null;
  members: Correlation[];
  /** The member with the largest effect (what selecting the group opens). */
  strongest: Correlation;
  significant: number;
}

/** Split results into machine-wide series and per-process groups (both in the given order). */
export function splitProcesses(results: readonly Correlation[]): { series: Correlation[]; groups: ProcessGroup[]; perProcess: number } {
  const series: Correlation[] = [];
  const groups = new Map<string, ProcessGroup>();
  let perProcess = 0;
  for (const r of results) {
    if (!isPerProcess(r.labels)) {
      series.push(r);
      continue;
    }
    perProcess += 1;
    const process = r.labels.name ?? r.labels.process ?? "?";
    const host = r.labels.host ?? null;
    const key = `${r.name}\u0000${process}\u0000${host ?? ""}`;
    const g = groups.get(key);
    if (g) {
      g.members.push(r);
      if (Math.abs(r.effect_pct) > Math.abs(g.strongest.effect_pct)) g.strongest = r;
      if (r.significant) g.significant += 1;
    } else {
      groups.set(key, { key, name: r.name, process, host, members: [r], strongest: r, significant: r.significant ? 1 : 0 });
    }
  }
  return { series, groups: [...groups.values()], perProcess };
}

/** A stable key for a result row. */
export function resultKey(r: Pick<Correlation, "name" | "labels">): string {
  return `${r.name}{${formatLabels(r.labels)}}`;
}

const NON_NEGATIVE = new Set(["percent", "ratio", "milliseconds", "bytes", "bytes_per_second", "requests_per_second"]);

export interface Axis {
  lo: number;
  hi: number;
  ticks: number[];
  /** The tick labels, each with its unit. */
  labels: string[];
}

/** A round step (1, 2 or 5 times a power of ten) giving about `count` intervals over `span`. */
export function niceStep(span: number, count = 4): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  const nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nice * power;
}

function decimalsFor(step: number): number {
  if (step >= 1) return 0;
  return Math.min(6, Math.ceil(-Math.log10(step) - 1e-9));
}

function fixed(value: number, decimals: number): string {
  const text = value.toFixed(decimals);
  return text === "-0" || /^-0\.0*$/.test(text) ? text.slice(1) : text;
}

/** How a unit's ticks are written: a divisor and a suffix chosen from the axis's top. */
function tickUnit(unit: string | null, top: number): { div: number; suffix: string } {
  switch (unit) {
    case "milliseconds":
      if (top >= 2 * 3_600_000) return { div: 3_600_000, suffix: " h" };
      if (top >= 2 * 60_000) return { div: 60_000, suffix: " min" };
      if (top >= 2000) return { div: 1000, suffix: " s" };
      return { div: 1, suffix: " ms" };
    case "percent":
      return { div: 1, suffix: "%" };
    case "ratio":
      return { div: 0.01, suffix: "%" };
    case "bytes":
    case "bytes_per_second": {
      const per = unit === "bytes_per_second" ? "/s" : "";
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0;
      while (top / 1024 ** i >= 2048 && i < units.length - 1) i += 1;
      return { div: 1024 ** i, suffix: ` ${units[i]}${per}` };
    }
    case "requests_per_second":
      return { div: 1, suffix: "/s" };
    default:
      if (Math.abs(top) >= 2e6) return { div: 1e6, suffix: "M" };
      if (Math.abs(top) >= 2e4) return { div: 1e3, suffix: "k" };
      return { div: 1, suffix: "" };
  }
}

/**
 * The axis of a box plot of `values` in `unit` (metricUnit's names, or null):
 * round ticks in the unit's scale (no "-4.45e-4"), starting at 0 for
 * quantities that cannot be negative (durations, percentages, bytes...).
 */
export function boxAxis(values: readonly number[], unit: string | null, count = 4): Axis {
  const finite = values.filter((v) => Number.isFinite(v));
  let lo = finite.length ? Math.min(...finite) : 0;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (NON_NEGATIVE.has(unit ?? "")) {
    lo = 0;
    hi = Math.max(hi, 0);
  }
  if (hi <= lo) hi = lo + (lo === 0 ? 1 : Math.abs(lo) * 0.1);
  const { div, suffix } = tickUnit(unit, hi);
  const step = niceStep((hi - lo) / div, count) * div;
  const start = Math.floor(lo / step) * step;
  const end = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let t = start; t <= end + step / 2; t += step) ticks.push(Math.abs(t) < step / 1e6 ? 0 : t);
  const decimals = decimalsFor(step / div);
  const labels = ticks.map((t) => `${fixed(t / div, decimals)}${suffix}`);
  return { lo: start, hi: end, ticks, labels };
}
