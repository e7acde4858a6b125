// Reading an alert's context (GET /api/v1/alerts/{fp}/context, or the alert's
// own `context`) into sections the detail renders, and small alert texts
// shared by the Alerts and Overview views. Pure functions: tested in alerts.test.ts.

import { hashFor } from "./router.svelte";
import type { AlertJson, Overview } from "./types";
import { formatAgo } from "./format";

/** A scan as the alert context names it (alerts/context.py ScanInfo.as_json). */
export interface ContextScan {
  scan_id: string;
  target: string;
  host: string | null;
  started_ms: number;
  finished_ms: number | null;
  status: string;
  scanners: string[];
  violations: number | null;
  new_findings: number | null;
  pacing?: { summary?: string; throttled_ms?: number } | null;
}

/** A finding as the alert context names it (never its snippet). */
export interface ContextFinding {
  fingerprint: string;
  rule_id: string;
  scanner: string;
  severity: string;
  category?: string;
  path: string;
  line: number;
}

export interface ContextLoad {
  cpu_percent: number | null;
  memory_percent: number | null;
  load_1m: number | null;
}

/** A value with a name, for the generic definition list of keys the view does not know. */
export interface ExtraEntry {
  key: string;
  value: string;
}

export interface ReadContext {
  /** The one sentence on both sides. */
  text: string | null;
  /** The scan the alert is about: the one running when it fired, else the last finished. */
  scan: ContextScan | null;
  scanRole: "running" | "latest" | null;
  /** Other scans around the alert (newest first), without `scan`. */
  otherScans: ContextScan[];
  findings: ContextFinding[];
  host: string | null;
  load: ContextLoad | null;
  /** Keys this view does not render as a section: shown as they are. */
  extra: ExtraEntry[];
}

const SECURITY_KEYS = new Set(["scope", "latest_scan", "new_findings", "scan_running", "scans"]);
const PERFORMANCE_KEYS = new Set(["recent", "host", "load"]);
const TOP_KEYS = new Set(["security", "performance", "text"]);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function asScan(v: unknown): ContextScan | null {
  if (!isRecord(v) || typeof v.scan_id !== "string") return null;
  return {
    scan_id: v.scan_id,
    target: typeof v.target === "string" ? v.target : "",
    host: typeof v.host === "string" ? v.host : null,
    started_ms: typeof v.started_ms === "number" ? v.started_ms : 0,
    finished_ms: typeof v.finished_ms === "number" ? v.finished_ms : null,
    status: typeof v.status === "string" ? v.status : "",
    scanners: Array.isArray(v.scanners) ? v.scanners.map(String) : [],
    violations: typeof v.violations === "number" ? v.violations : null,
    new_findings: typeof v.new_findings === "number" ? v.new_findings : null,
    pacing: isRecord(v.pacing) ? (v.pacing as ContextScan["pacing"]) : null,
  };
}

function asFinding(v: unknown): ContextFinding | null {
  if (!isRecord(v) || typeof v.rule_id !== "string") return null;
  return {
    fingerprint: String(v.fingerprint ?? ""),
    rule_id: v.rule_id,
    scanner: String(v.scanner ?? ""),
    severity: String(v.severity ?? "info"),
    category: typeof v.category === "string" ? v.category : undefined,
    path: String(v.path ?? ""),
    line: typeof v.line === "number" ? v.line : 0,
  };
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** Any JSON value as one line of text (objects as compact JSON). */
export function valueText(v: unknown): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** Split a context object into the sections the detail shows; nothing is lost. */
export function readContext(raw: unknown): ReadContext {
  const out: ReadContext = {
    text: null,
    scan: null,
    scanRole: null,
    otherScans: [],
    findings: [],
    host: null,
    load: null,
    extra: [],
  };
  if (!isRecord(raw)) {
    if (raw !== null && raw !== undefined) out.extra.push({ key: "context", value: valueText(raw) });
    return out;
  }
  if (typeof raw.text === "string" && raw.text) out.text = raw.text;
  else if (raw.text !== undefined && raw.text !== null && raw.text !== "") out.extra.push({ key: "text", value: valueText(raw.text) });
  for (const [k, v] of Object.entries(raw)) if (!TOP_KEYS.has(k)) out.extra.push({ key: k, value: valueText(v) });

  const sec = raw.security;
  if (isRecord(sec)) {
    const running = asScan(sec.scan_running);
    const latest = asScan(sec.latest_scan);
    out.scan = running ?? latest;
    out.scanRole = running ? "running" : latest ? "latest" : null;
    const scans = Array.isArray(sec.scans) ? sec.scans.map(asScan).filter((s): s is ContextScan => s !== null) : [];
    out.otherScans = scans.filter((s) => s.scan_id !== out.scan?.scan_id);
    if (running && latest && latest.scan_id !== running.scan_id && !out.otherScans.some((s) => s.scan_id === latest.scan_id)) {
      out.otherScans.unshift(latest);
    }
    out.findings = Array.isArray(sec.new_findings)
      ? sec.new_findings.map(asFinding).filter((f): f is ContextFinding => f !== null)
      : [];
    for (const [k, v] of Object.entries(sec)) if (!SECURITY_KEYS.has(k)) out.extra.push({ key: `security.${k}`, value: valueText(v) });
  } else if (sec !== undefined && sec !== null) {
    out.extra.push({ key: "security", value: valueText(sec) });
  }

  const perf = raw.performance;
  if (isRecord(perf)) {
    out.host = typeof perf.host === "string" && perf.host ? perf.host : null;
    if (isRecord(perf.load)) {
      const load = perf.load;
      out.load = { cpu_percent: num(load.cpu_percent), memory_percent: num(load.memory_percent), load_1m: num(load.load_1m) };
      for (const [k, v] of Object.entries(load)) {
        if (!["cpu_percent", "memory_percent", "load_1m"].includes(k)) out.extra.push({ key: `performance.load.${k}`, value: valueText(v) });
      }
    }
    for (const [k, v] of Object.entries(perf)) if (!PERFORMANCE_KEYS.has(k)) out.extra.push({ key: `performance.${k}`, value: valueText(v) });
  } else if (perf !== undefined && perf !== null) {
    out.extra.push({ key: "performance", value: valueText(perf) });
  }
  return out;
}

/** When an alert became active (what "around the alert" is centred on). */
export function alertTime(alert: AlertJson): number {
  return alert.fired_at_ms ?? alert.active_since_ms ?? alert.updated_ms;
}

/** How far before and after the alert the Performance link shows. */
export const AROUND_MS = 30 * 60_000;

/**
 * The Performance view for `host` (all hosts when null) over an absolute
 * range around `atMs`, ending no later than `nowMs`; the target is kept.
 */
export function performanceHref(shared: URLSearchParams, host: string | null, atMs: number, nowMs: number, metric = "cpu_percent"): string {
  const next = new URLSearchParams(shared);
  if (host) next.set("host", host);
  else next.delete("host");
  const end = Math.min(nowMs, atMs + AROUND_MS);
  const start = Math.min(atMs - AROUND_MS, end - 60_000);
  next.set("from", String(Math.round(start)));
  next.set("to", String(Math.round(end)));
  return hashFor("performance", next, { metric });
}

/** The Findings view of a scan's target, with its new findings (and the scan named). */
export function findingsHref(shared: URLSearchParams, scan: { scan_id: string; target: string } | null, own: Record<string, string> = {}): string {
  const next = new URLSearchParams(shared);
  if (scan?.target) next.set("target", scan.target);
  return hashFor("findings", next, { ...(scan ? { scan: scan.scan_id } : {}), ...own });
}

/** "ack: dana", "silenced", "ack: dana · silenced" or "" for the alerts table's status cell. */
export function statusText(alert: Pick<AlertJson, "acknowledged_by" | "silenced">): string {
  const parts: string[] = [];
  if (alert.acknowledged_by) parts.push(`ack: ${alert.acknowledged_by}`);
  if (alert.silenced) parts.push("silenced");
  return parts.join(" · ");
}

/** Firing alerts that count (not silenced) and how many are silenced. */
export function splitFiring<T extends { silenced?: boolean }>(firing: readonly T[]): { shown: T[]; silenced: number } {
  const shown = firing.filter((a) => !a.silenced);
  return { shown, silenced: firing.length - shown.length };
}

/** What the overview names: its target (the API's `target`) and when it was last scanned. */
export type OverviewNamed = Overview & { target?: string | null; alerts: Overview["alerts"] & { silenced?: number } };

export function overviewTitle(ov: OverviewNamed, scopeTarget: string, now: number): { target: string; detail: string } {
  const target = ov.target ?? ov.security.last_scan?.target ?? (scopeTarget || null);
  if (!target) return { target: "all targets", detail: "no scan yet" };
  const last = ov.security.last_scan;
  const when = last ? (last.finished_ms ?? last.started_ms) : null;
  return { target, detail: when === null ? "not scanned yet" : `last scanned ${formatAgo(when, now)}` };
}
