// Pure formatting helpers: numbers, durations, times, labels.

const SEVERITY_RANK: Record<string, number> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

export function severityRank(severity: string): number {
  return SEVERITY_RANK[severity] ?? -1;
}

/** A compact number: 1234 -> "1.23k", 0.000123 -> "1.23e-4", null -> "—". */
export function formatNumber(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
  const abs = Math.abs(value);
  if (abs === 0) return "0";
  if (abs >= 1e9) return `${trim((value / 1e9).toPrecision(digits))}G`;
  if (abs >= 1e6) return `${trim((value / 1e6).toPrecision(digits))}M`;
  if (abs >= 1e4) return `${trim((value / 1e3).toPrecision(digits))}k`;
  if (abs >= 1) return trim(value.toFixed(Math.max(0, digits - Math.floor(Math.log10(abs)) - 1)));
  if (abs >= 1e-3) return trim(value.toPrecision(digits));
  return value.toExponential(digits - 1).replace(/\.?0+e/, "e").replace("e-", "e-");
}

function trim(text: string): string {
  return text.includes(".") && !text.includes("e") ? text.replace(/\.?0+$/, "") : text;
}

export function formatPercent(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return `${value.toFixed(digits)}%`;
}

/** A ratio in [0, 1] as a percentage. */
export function formatRatio(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return formatPercent(value * 100, digits);
}

/** Milliseconds as "850 ms", "12.3 s", "4m 05s", "2h 03m", "3d 4h". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  const sign = ms < 0 ? "-" : "";
  const abs = Math.abs(ms);
  if (abs < 1000) return `${sign}${abs < 10 ? abs.toFixed(1) : Math.round(abs)} ms`;
  const s = abs / 1000;
  if (s < 60) return `${sign}${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;
  const totalS = Math.round(s);
  const m = Math.floor(totalS / 60);
  if (m < 60) return `${sign}${m}m ${String(totalS % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${sign}${h}h ${String(m % 60).padStart(2, "0")}m`;
  return `${sign}${Math.floor(h / 24)}d ${h % 24}h`;
}

/** A value with its metric unit (the unit names secperf's MetricType uses). */
export function formatWithUnit(value: number | null | undefined, unit: string | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  switch (unit) {
    case "percent":
      return formatPercent(value);
    case "ratio":
      return formatRatio(value, 2);
    case "milliseconds":
      return formatDuration(value);
    case "bytes":
      return formatBytes(value);
    case "bytes_per_second":
      return `${formatBytes(value)}/s`;
    case "requests_per_second":
      return `${formatNumber(value)}/s`;
    default:
      return formatNumber(value);
  }
}

export function formatBytes(value: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Math.abs(value);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  const text = v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1);
  return `${value < 0 ? "-" : ""}${text} ${units[i]}`;
}

/** The unit of a metric secperf knows by name; null for others. */
export function metricUnit(name: string): string | null {
  if (name.endsWith("_percent") || name === "security_scan_coverage") return "percent";
  if (name.endsWith("_bytes")) return name.startsWith("memory") ? "bytes" : "bytes_per_second";
  if (name.endsWith("_ms") || name === "benchmark_time" || name === "security_scan_time") return "milliseconds";
  if (name === "error_rate" || name === "security_false_positives") return "ratio";
  if (name === "throughput") return "requests_per_second";
  return null;
}

const pad = (n: number): string => String(n).padStart(2, "0");

/** Local wall-clock time "YYYY-MM-DD HH:MM:SS". */
export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "5 s ago", "3 min ago", "2 h ago", "4 d ago" relative to ``now``. */
export function formatAgo(ms: number | null | undefined, now: number): string {
  if (ms === null || ms === undefined) return "—";
  const s = Math.round((now - ms) / 1000);
  if (s <= 0) return "just now"; // never "in the future": a fresh instant on a clock a little ahead
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** Labels as "a=1, b=2", sorted by name so the same set always reads the same. */
export function formatLabels(labels: Record<string, string> | null | undefined): string {
  if (!labels) return "";
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(", ");
}

export function labelsKey(name: string, labels: Record<string, string>): string {
  return `${name}{${formatLabels(labels)}}`;
}

/** Does a sample's label set carry every label of the wanted set? */
export function labelsMatch(want: Record<string, string>, have: Record<string, string>): boolean {
  return Object.keys(want).every((k) => have[k] === want[k]);
}

/** Convert a `YYYY-MM-DD` date input into the end of that day (local) in ms; null when empty or invalid. */
export function dateInputToMs(text: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text.trim());
  if (!m) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), 23, 59, 59, 999);
  return Number.isNaN(d.getTime()) ? null : d.getTime();
}
