// Pure text and geometry for scan pacing: the throttled stretches inside scan
// windows, what the budget did, predicted against actual durations, and the
// next planned scan. The views and the chart plugin only lay these out.

import { formatDuration } from "./format";
import type { PacingStretch, ScanJson, ScanPacing, ScanPrediction, ScanWindow, Schedule, SecurityMetrics } from "./types";

/** A throttled stretch as drawn: inside its scan's window. */
export interface ThrottleBand {
  scan_id: string;
  start_ms: number;
  end_ms: number;
  action: string;
  reason: string;
}

/**
 * A stretch clipped to its scan's window [windowStart, windowEnd]; null when
 * nothing of it lies inside (or its times are not numbers). A stretch still
 * open (no end yet) runs to the window's end.
 */
export function clipStretch(
  stretch: PacingStretch,
  windowStart: number,
  windowEnd: number,
): { start_ms: number; end_ms: number } | null {
  const end = stretch.end_ms ?? windowEnd;
  if (!Number.isFinite(stretch.start_ms) || !Number.isFinite(end)) return null;
  const start = Math.max(stretch.start_ms, windowStart);
  const stop = Math.min(end, windowEnd);
  if (stop <= start) return null;
  return { start_ms: start, end_ms: stop };
}

/** Every scan's throttled stretches, clipped to its window (a running scan's ends ``now``), by start. */
export function throttleBands(scans: readonly ScanWindow[], now: number): ThrottleBand[] {
  const bands: ThrottleBand[] = [];
  for (const scan of scans) {
    const stretches = scan.pacing?.stretches ?? [];
    const windowEnd = scan.end_ms ?? now;
    for (const s of stretches) {
      const clipped = clipStretch(s, scan.start_ms, windowEnd);
      if (clipped) bands.push({ scan_id: scan.scan_id, ...clipped, action: s.action, reason: s.reason });
    }
  }
  return bands.sort((a, b) => a.start_ms - b.start_ms);
}

/** The band containing ``ts``, if any. */
export function bandAt(bands: readonly ThrottleBand[], ts: number): ThrottleBand | null {
  return bands.find((b) => ts >= b.start_ms && ts <= b.end_ms) ?? null;
}

const ACTIONS: Record<string, string> = {
  pause: "paused",
  fewer_workers: "fewer workers",
  batch_pause: "paused between batches",
};

/** What the controller did, in words: "paused", "fewer workers", … */
export function actionText(action: string): string {
  return ACTIONS[action] ?? action.replaceAll("_", " ");
}

/**
 * "throttled 12.3 s (paused: response_time_ms +23 % over … (budget 10 %))",
 * naming the longest stretch's action and reason; "not throttled" when the
 * budget never held the scan back; null without a pacing document.
 */
export function throttleSummary(pacing: ScanPacing | null | undefined): string | null {
  if (!pacing) return null;
  const stretches = pacing.stretches ?? [];
  const throttled = pacing.throttled_ms ?? 0;
  if (throttled <= 0 && stretches.length === 0) return "not throttled";
  const longest = [...stretches].sort((a, b) => b.end_ms - b.start_ms - (a.end_ms - a.start_ms))[0];
  const why = longest ? ` (${actionText(longest.action)}: ${longest.reason})` : "";
  const more = stretches.length > 1 ? ` in ${stretches.length} stretches` : "";
  return `throttled ${formatDuration(throttled)}${more}${why}`;
}

/** The last ``ScanThrottled`` event of a running scan. */
export interface LiveThrottle {
  scan_id: string;
  action: string;
  reason: string;
  throttled_ms: number;
}

/**
 * A running scan's throttling as its events tell it: "held back (paused:
 * <reason>), 12.3 s so far" or "back to full pace, throttled 12.3 s so far".
 */
export function liveThrottleText(t: LiveThrottle | null | undefined): string | null {
  if (!t) return null;
  const so = `${formatDuration(t.throttled_ms)} so far`;
  if (t.action === "resume") return `back to full pace, throttled ${so}`;
  return `held back (${actionText(t.action)}: ${t.reason}), throttled ${so}`;
}

/** "budget on (max +10 %)", "budget off: <why>" or "no impact budget". */
export function budgetText(pacing: ScanPacing | null | undefined): string | null {
  if (!pacing) return null;
  const budget = pacing.budget;
  if (!budget || budget.state === "not_configured") return "no impact budget";
  if (budget.state === "on") {
    return budget.max_increase_pct === null || budget.max_increase_pct === undefined
      ? "budget on"
      : `budget on (max +${trimNumber(budget.max_increase_pct)} %)`;
  }
  return `budget off: ${budget.reason || "no reason recorded"}`;
}

/** "within budget", "over budget", or null when the budget was off. */
export function withinBudgetText(pacing: ScanPacing | null | undefined): string | null {
  if (!pacing || pacing.within_budget === null || pacing.within_budget === undefined) return null;
  return pacing.within_budget ? "within budget" : "over budget";
}

/** "priority low · budget on (max +10 %) · within budget · deadline reached". */
export function pacingFacts(pacing: ScanPacing | null | undefined): string | null {
  if (!pacing) return null;
  const parts = [`priority ${pacing.priority}`, budgetText(pacing), withinBudgetText(pacing)];
  if (pacing.deadline_reached) parts.push("deadline reached: ran unthrottled to finish");
  return parts.filter((p): p is string => Boolean(p)).join(" · ");
}

/** How far the actual was from the prediction, in whole percent of the prediction; null when not comparable. */
export function deltaPercent(actualMs: number | null | undefined, predictedMs: number | null | undefined): number | null {
  if (actualMs === null || actualMs === undefined || predictedMs === null || predictedMs === undefined) return null;
  if (!Number.isFinite(actualMs) || !Number.isFinite(predictedMs) || predictedMs <= 0) return null;
  // Half away from zero, so +12.5 and -12.5 read alike.
  const pct = ((actualMs - predictedMs) / predictedMs) * 100;
  return Math.sign(pct) * Math.round(Math.abs(pct)) || 0;
}

/** "+8 %", "-12 %", "±0 %". */
export function signedPercent(pct: number): string {
  if (pct === 0) return "±0 %";
  return `${pct > 0 ? "+" : "-"}${Math.abs(pct)} %`;
}

/**
 * "4.10 s (predicted 3.80 s, +8 %)"; "predicted 3.80 s" while there is no
 * actual yet; the actual alone without a prediction.
 */
export function predictionText(actualMs: number | null | undefined, predictedMs: number | null | undefined): string {
  const hasPrediction = predictedMs !== null && predictedMs !== undefined && Number.isFinite(predictedMs);
  const hasActual = actualMs !== null && actualMs !== undefined && Number.isFinite(actualMs);
  if (!hasPrediction) return formatDuration(actualMs);
  if (!hasActual) return `predicted ${formatDuration(predictedMs)}`;
  const delta = deltaPercent(actualMs, predictedMs);
  const tail = delta === null ? "" : `, ${signedPercent(delta)}`;
  return `${formatDuration(actualMs)} (predicted ${formatDuration(predictedMs)}${tail})`;
}

/** How long a scan took: its measured duration, else its end minus its start; null while running. */
export function scanActualMs(scan: Pick<ScanJson, "metrics" | "started_ms" | "finished_ms">): number | null {
  const measured = scan.metrics?.scan_duration_ms;
  if (measured !== null && measured !== undefined && Number.isFinite(measured)) return measured;
  if (scan.finished_ms === null || scan.finished_ms === undefined) return null;
  return scan.finished_ms - scan.started_ms;
}

export interface ScannerRow {
  scanner: string;
  predicted_ms: number | null;
  actual_ms: number | null;
  text: string;
}

/** Predicted against actual per scanner (every scanner either side names), by name. */
export function perScannerRows(
  prediction: ScanPrediction | null | undefined,
  metrics: SecurityMetrics | null | undefined,
): ScannerRow[] {
  const predicted = prediction?.per_scanner ?? {};
  const actual = (metrics?.scanner_durations_ms ?? {}) as Record<string, number>;
  const names = [...new Set([...Object.keys(predicted), ...Object.keys(actual)])].sort();
  return names.map((scanner) => {
    const p = predicted[scanner]?.duration_ms ?? null;
    const a = typeof actual[scanner] === "number" ? actual[scanner] : null;
    return { scanner, predicted_ms: p, actual_ms: a, text: predictionText(a, p) };
  });
}

export interface PredictionPoint {
  scan_id: string;
  ts_ms: number;
  actual_ms: number;
  predicted_ms: number;
}

/** The last ``n`` finished scans of ``target`` that carry a prediction, oldest first. */
export function predictionHistory(scans: readonly ScanJson[], target: string, n: number): PredictionPoint[] {
  const points: PredictionPoint[] = [];
  for (const scan of scans) {
    if (scan.target !== target || !scan.prediction) continue;
    const actual = scanActualMs(scan);
    const predicted = scan.prediction.duration_ms;
    if (actual === null || !Number.isFinite(predicted)) continue;
    points.push({ scan_id: scan.scan_id, ts_ms: scan.started_ms, actual_ms: actual, predicted_ms: predicted });
  }
  points.sort((a, b) => a.ts_ms - b.ts_ms);
  return points.slice(-n);
}

/** The median absolute error of the predictions, in percent of the actual; null without points. */
export function medianAbsPercentError(points: readonly PredictionPoint[]): number | null {
  const errors = points
    .filter((p) => p.actual_ms > 0)
    .map((p) => (Math.abs(p.predicted_ms - p.actual_ms) / p.actual_ms) * 100)
    .sort((a, b) => a - b);
  if (errors.length === 0) return null;
  const mid = errors.length >> 1;
  return errors.length % 2 ? errors[mid] : (errors[mid - 1] + errors[mid]) / 2;
}

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/** "Tue 03:00 UTC". */
export function utcSlot(ms: number): string {
  const d = new Date(ms);
  const hh = String(d.getUTCHours()).padStart(2, "0");
  const mm = String(d.getUTCMinutes()).padStart(2, "0");
  return `${WEEKDAYS[d.getUTCDay()]} ${hh}:${mm} UTC`;
}

/** A wait as "30 s", "42 min", "2 h 05 min", "3 d 4 h". */
export function formatWait(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${String(m % 60).padStart(2, "0")} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/**
 * The next planned scan in words: "next scan in 42 min (Tue 03:00 UTC,
 * quietest hour in the next 2 h)", "scans when quiet: now", or null when
 * the server plans nothing (no periodic scans, or no schedule at all).
 */
export function scheduleText(schedule: Schedule | null | undefined, now: number): string | null {
  if (!schedule) return null;
  const next = schedule.next_scan_ms;
  if (schedule.quiet_now && (next === null || next <= now + 60_000)) return "scans when quiet: now";
  if (next === null || next === undefined || !Number.isFinite(next)) return null;
  const slot = utcSlot(next);
  // The server's reason may name the slot itself ("…: Tue 03:00 UTC (…)"): say it once.
  const reason = (schedule.reason ?? "")
    .replace(new RegExp(`\\s*[:,–-]?\\s*${slot.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`), "")
    .trim();
  const why = reason ? `, ${reason}` : "";
  if (next <= now) return `next scan due now (${slot}${why})`;
  return `next scan in ${formatWait(next - now)} (${slot}${why})`;
}

/**
 * "quiet now (host CPU 4 ≤ 12) · every 1 h · waits at most 2 h for a quiet
 * time" (the reason only when scanning now, where the headline has none), or
 * null when nothing is known.
 */
export function scheduleDetail(schedule: Schedule | null | undefined): string | null {
  if (!schedule) return null;
  const parts: string[] = [];
  if (schedule.quiet_now && schedule.reason) parts.push(schedule.reason.trim());
  if (schedule.every_ms) parts.push(`every ${formatWait(schedule.every_ms)}`);
  if (schedule.max_delay_ms) parts.push(`waits at most ${formatWait(schedule.max_delay_ms)} for a quiet time`);
  return parts.length ? parts.join(" · ") : null;
}

export const REPORT_FORMATS = ["html", "pdf", "json"] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];
export const REPORT_PERIODS = [30, 90, 365] as const;

/** The query of ``GET /api/v1/report`` for a period in days, a target ("" = all) and a format. */
export function reportQuery(days: number, target: string, format: ReportFormat): Record<string, string> {
  const query: Record<string, string> = { since: `${days}d`, format };
  if (target) query.target = target;
  return query;
}

/**
 * The file name a ``Content-Disposition`` header gives (RFC 6266: ``filename*``
 * first, then ``filename``), reduced to a plain name; ``fallback`` without one.
 */
export function filenameFromDisposition(header: string | null | undefined, fallback: string): string {
  if (!header) return fallback;
  let name: string | null = null;
  const star = /filename\*\s*=\s*([^;]+)/i.exec(header);
  if (star) {
    const value = star[1].trim().replace(/^"(.*)"$/, "$1");
    const encoded = value.includes("''") ? value.slice(value.indexOf("''") + 2) : value;
    try {
      name = decodeURIComponent(encoded);
    } catch {
      name = null;
    }
  }
  if (!name) {
    const plain = /filename\s*=\s*("((?:[^"\\]|\\.)*)"|[^;]+)/i.exec(header);
    if (plain) name = plain[2] !== undefined ? plain[2].replace(/\\(.)/g, "$1") : plain[1].trim();
  }
  // Never a path: the last segment, without control characters.
  const base = (name ?? "").split(/[\\/]/).pop()?.replace(/[\u0000-\u001f\u007f]/g, "").trim() ?? "";
  return base && base !== "." && base !== ".." ? base : fallback;
}

/** The name to save a report under when the server gives none. */
export function reportFallbackName(days: number, target: string, format: ReportFormat): string {
  const scope = target ? target.replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^-+|-+$/g, "") || "target" : "all";
  return `secperf-report-${scope}-${days}d.${format}`;
}

function trimNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}
