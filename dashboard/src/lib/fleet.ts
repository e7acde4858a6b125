// The fleet: every target and every host, read in whole pages (no read per
// row), sorted and filtered in the browser.

import { api } from "./api";
import type { Column } from "./export";
import { formatAgo, formatDuration, formatNumber, formatTime } from "./format";
import { SEVERITIES, type FleetHost, type FleetPage, type FleetTarget } from "./types";

/** The most entries the server gives in one page. */
export const FLEET_PAGE = 1000;
/** A host whose newest sample is older than this is marked stale (Prometheus' staleness). */
export const STALE_MS = 5 * 60_000;

// Reads under way, by path: the scope bar and the fleet view asking at once share one.
const inFlight = new Map<string, Promise<unknown[]>>();

/** Every entry of a paginated fleet list (one request per 1000 entries; a read under way is shared). */
function all<T>(path: string, key: "targets" | "hosts"): Promise<T[]> {
  const running = inFlight.get(path);
  if (running) return running as Promise<T[]>;
  const read = readAll<T>(path, key).finally(() => inFlight.delete(path));
  inFlight.set(path, read);
  return read;
}

async function readAll<T>(path: string, key: "targets" | "hosts"): Promise<T[]> {
  const out: T[] = [];
  for (let offset = 0; ; offset += FLEET_PAGE) {
    const page = await api.get<FleetPage & Record<typeof key, T[]>>(path, { limit: FLEET_PAGE, offset });
    out.push(...page[key]);
    if (page[key].length === 0 || offset + page[key].length >= page.total) return out;
  }
}

export function fetchFleetTargets(): Promise<FleetTarget[]> {
  return all<FleetTarget>("/api/v1/fleet/targets", "targets");
}

export function fetchFleetHosts(): Promise<FleetHost[]> {
  return all<FleetHost>("/api/v1/fleet/hosts", "hosts");
}

/**
 * Firing alerts of the whole fleet that no silence covers: each alert once,
 * whatever labels it has (a host-only alert is on no target's row, an alert of
 * a target on a host is on two rows). What the Alerts badge counts with no scope.
 */
export async function fetchFiringCount(): Promise<number> {
  const res = await api.get<{ counts: { firing: number } }>("/api/v1/alerts", { state: "firing" });
  return res.counts.firing;
}

/** "1 firing alert", "3 firing alerts". */
export function countText(n: number, one: string, many: string = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Open findings of a target: the severity counts of its newest finished scan, added up. */
export function openFindings(t: FleetTarget): number {
  return SEVERITIES.reduce((sum, sev) => sum + (t.findings.severity_counts[sev] ?? 0), 0);
}

/** When the target was last scanned: its newest scan's end, or its start while it runs. */
export function lastScanMs(t: FleetTarget): number | null {
  const s = t.last_scan;
  return s ? (s.finished_ms ?? s.started_ms) : null;
}

export function isStale(h: FleetHost, now: number): boolean {
  return h.last_seen_ms === null || now - h.last_seen_ms > STALE_MS;
}

export type TargetSort = "name" | "findings" | "last_scan";
export type HostSort = "name" | "cpu" | "memory" | "last_seen";
export type SortDir = "ascending" | "descending";

/** The direction a column sorts in first: names A–Z, numbers and times largest/newest first. */
export function firstDir(key: TargetSort | HostSort): SortDir {
  return key === "name" ? "ascending" : "descending";
}

/** Compare with missing values last whatever the direction. */
function compareMaybe(a: number | null, b: number | null, dir: SortDir): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
  return dir === "ascending" ? a - b : b - a;
}

// One collator for every comparison (localeCompare with options builds one per call).
const NAMES = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

function byName(a: string, b: string, dir: SortDir): number {
  const c = NAMES.compare(a, b);
  return dir === "ascending" ? c : -c;
}

/**
 * Open findings compared by severity first (a critical outweighs any number
 * of lows), then the next severity, and so on.
 */
function compareFindings(a: FleetTarget, b: FleetTarget, dir: SortDir): number {
  for (const sev of SEVERITIES) {
    const c = compareMaybe(a.findings.severity_counts[sev] ?? 0, b.findings.severity_counts[sev] ?? 0, dir);
    if (c) return c;
  }
  return 0;
}

export function sortTargets(rows: readonly FleetTarget[], key: TargetSort, dir: SortDir): FleetTarget[] {
  const out = [...rows];
  out.sort((a, b) => {
    let c = 0;
    if (key === "findings") c = compareFindings(a, b, dir);
    else if (key === "last_scan") c = compareMaybe(lastScanMs(a), lastScanMs(b), dir);
    return c || byName(a.target, b.target, key === "name" ? dir : "ascending");
  });
  return out;
}

export function sortHosts(rows: readonly FleetHost[], key: HostSort, dir: SortDir): FleetHost[] {
  const out = [...rows];
  out.sort((a, b) => {
    let c = 0;
    if (key === "cpu") c = compareMaybe(a.latest.cpu_percent, b.latest.cpu_percent, dir);
    else if (key === "memory") c = compareMaybe(a.latest.memory_percent, b.latest.memory_percent, dir);
    else if (key === "last_seen") c = compareMaybe(a.last_seen_ms, b.last_seen_ms, dir);
    return c || byName(a.host, b.host, key === "name" ? dir : "ascending");
  });
  return out;
}

/** Whether a name matches the filter text (case-insensitive substring; empty matches all). */
export function nameMatches(name: string, filter: string): boolean {
  const f = filter.trim().toLowerCase();
  return !f || name.toLowerCase().includes(f);
}

/** Options for a picker: the names known, plus the one in the URL if the server does not know it. */
export function pickerOptions(names: readonly string[], current: string): string[] {
  return current && !names.includes(current) ? [...names, current] : [...names];
}

const SHORT: Record<string, string> = { critical: "C", high: "H", medium: "M", low: "L", info: "I" };

/** What a target's row shows, worked out once per row: the row itself is plain text. */
export interface TargetRowView {
  target: FleetTarget;
  /** "3 min ago" (or null: never scanned), with the exact time for its title. */
  ago: string | null;
  agoTitle: string;
  status: string;
  total: number;
  /** Only the severities with findings: a row with none draws no badge. */
  sevs: { sev: string; short: string; n: number }[];
  newFindings: number;
  gate: { verdict: string; text: string; title: string } | null;
  cost: string | null;
  cpu: string | null;
}

export function targetRowView(t: FleetTarget, now: number): TargetRowView {
  const last = lastScanMs(t);
  const counts = t.findings.severity_counts;
  const sevs: TargetRowView["sevs"] = [];
  for (const sev of SEVERITIES) {
    const n = counts[sev] ?? 0;
    if (n > 0) sevs.push({ sev, short: SHORT[sev] ?? sev, n });
  }
  return {
    target: t,
    ago: t.last_scan ? formatAgo(last, now) : null,
    agoTitle: formatTime(last),
    status: t.last_scan?.status ?? "",
    total: openFindings(t),
    sevs,
    newFindings: t.findings.new_findings,
    gate: t.gate
      ? { verdict: t.gate.verdict, text: t.gate.verdict.replace("_", " "), title: `gate run ${t.gate.run_id}, ${formatTime(t.gate.finished_ms)}` }
      : null,
    cost: t.scan_cost ? formatDuration(t.scan_cost.duration_ms) : null,
    cpu: t.scan_cost && t.scan_cost.cpu_seconds !== null ? `${formatNumber(t.scan_cost.cpu_seconds)} CPU s` : null,
  };
}

export const TARGET_COLUMNS: readonly Column<FleetTarget>[] = [
  { header: "target", value: (t) => t.target },
  { header: "last_scan_id", value: (t) => t.last_scan?.scan_id },
  { header: "last_scan_status", value: (t) => t.last_scan?.status },
  { header: "last_scan_ms", value: (t) => lastScanMs(t) },
  { header: "open_findings", value: (t) => openFindings(t) },
  ...SEVERITIES.map((sev) => ({ header: sev, value: (t: FleetTarget) => t.findings.severity_counts[sev] ?? 0 })),
  { header: "new_findings", value: (t) => t.findings.new_findings },
  { header: "gate_verdict", value: (t) => t.gate?.verdict },
  { header: "scan_duration_ms", value: (t) => t.scan_cost?.duration_ms },
  { header: "scan_cpu_seconds", value: (t) => t.scan_cost?.cpu_seconds },
  { header: "alerts_firing", value: (t) => t.alerts.firing },
  { header: "alerts_silenced", value: (t) => t.alerts.silenced },
];

export const HOST_COLUMNS: readonly Column<FleetHost>[] = [
  { header: "host", value: (h) => h.host },
  { header: "cpu_percent", value: (h) => h.latest.cpu_percent },
  { header: "memory_percent", value: (h) => h.latest.memory_percent },
  { header: "load_1m", value: (h) => h.latest.load_1m },
  { header: "last_seen_ms", value: (h) => h.last_seen_ms },
  { header: "alerts_firing", value: (h) => h.alerts.firing },
  { header: "alerts_silenced", value: (h) => h.alerts.silenced },
];
