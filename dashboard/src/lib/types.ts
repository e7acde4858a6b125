// Shapes of the secperf HTTP API (v1). Times are UTC milliseconds.

export type Severity = "critical" | "high" | "medium" | "low" | "info";
export const SEVERITIES: readonly Severity[] = ["critical", "high", "medium", "low", "info"];

export interface SecurityMetrics {
  scan_id: string;
  target: string;
  started_ms: number;
  finished_ms: number;
  scan_duration_ms: number;
  violations_found: number;
  false_positive_rate: number;
  vulnerability_severity_counts: Record<string, number>;
  // Null for an import of another tool's results (kind "import"): not measured.
  scan_coverage_percent: number | null;
  files_scanned?: number;
  files_skipped?: number;
  new_findings?: number;
  existing_findings?: number;
  fixed_findings?: number;
  false_positives?: number;
  accepted_risks?: number;
  kind?: "scan" | "import";
  [key: string]: unknown;
}

export interface ScanJson {
  scan_id: string;
  target: string;
  status: string;
  started_ms: number;
  finished_ms: number | null;
  metrics: SecurityMetrics | null;
  cost: Record<string, unknown> | null;
  // How the scan shared the machine and what it was predicted to cost; null
  // (or absent, from an older server) until the scan records them.
  pacing?: ScanPacing | null;
  prediction?: ScanPrediction | null;
}

export type PacingAction = "pause" | "fewer_workers" | "batch_pause";

/** A stretch of a scan during which the impact budget held it back. */
export interface PacingStretch {
  start_ms: number;
  end_ms: number;
  action: PacingAction | string;
  reason: string;
}

export interface PacingGuard {
  series: string;
  before: number | null;
  quiet: number | null;
  peak_increase_pct: number | null;
  samples: number;
}

export interface PacingBudget {
  state: "on" | "off" | "not_configured";
  reason: string | null;
  max_increase_pct: number | null;
  guards: PacingGuard[];
}

/** The ``pacing`` document of a scan. */
export interface ScanPacing {
  priority: "low" | "normal" | string;
  budget: PacingBudget | null;
  throttled_ms: number;
  stretches: PacingStretch[];
  deadline_ms: number | null;
  deadline_reached: boolean;
  within_budget: boolean | null;
}

/** The ``prediction`` document of a scan: what the cost model expected before it ran. */
export interface ScanPrediction {
  duration_ms: number;
  cpu_s: number | null;
  basis: "history" | "builtin" | string;
  history_scans: number;
  per_scanner: Record<string, { duration_ms: number; cpu_s: number | null }>;
  inputs: Record<string, number>;
  made_ms: number;
}

/** ``GET /api/v1/schedule``: when the next periodic scan starts and why. */
export interface Schedule {
  next_scan_ms: number | null;
  reason: string;
  quiet_now: boolean;
  every_ms: number | null;
  max_delay_ms: number | null;
  profile: { hour_of_week: number; level: number; samples: number }[];
}

export interface TrendPoint {
  ts_ms: number;
  violations: number;
  new: number;
  scan_duration_ms: number | null;
}

export interface AlertJson {
  fingerprint: string;
  rule: string;
  state: string;
  severity: Severity;
  kind: "security" | "performance";
  labels: Record<string, string>;
  annotations: Record<string, string>;
  value: number | null;
  active_since_ms: number | null;
  fired_at_ms: number | null;
  resolved_at_ms: number | null;
  updated_ms: number;
  acknowledged_by: string | null;
  acknowledgement_note: string | null;
  silenced?: boolean;
  context?: Record<string, unknown> | null;
}

export interface Overview {
  security: {
    last_scan: ScanJson | null;
    kind?: "scan" | "import" | null;
    // Violations: findings triage has not set aside; the severity counts add up to it.
    severity_counts: Record<string, number>;
    violations?: number;
    findings?: number;
    new_findings: number;
    false_positives?: number;
    accepted_risks?: number;
    false_positive_rate: number;
    coverage_percent: number | null;
    scan_duration_ms: number | null;
    trend: TrendPoint[];
  };
  performance: {
    latest: { cpu_percent: number | null; memory_percent: number | null; load_1m: number | null };
    hosts: string[];
  };
  alerts: { firing: AlertJson[]; pending: number };
  scan_running: ScanJson | null;
  // Writes the server's store refused after every retry; null when it stores nothing.
  store_writes?: StoreWrites | null;
}

export interface StoreWrites {
  failures: number;
  lost_events: number;
  lost_samples: number;
  kept_events: number;
}

export interface QuerySeries {
  name: string;
  labels: Record<string, string>;
  timestamps_ms: number[];
  avg: number[];
  min: number[];
  max: number[];
}

export interface ScanWindow {
  scan_id: string;
  start_ms: number;
  end_ms: number | null;
  violations: number;
  new_findings: number;
  // Joined from the scan's record by the view (the annotations carry no pacing).
  pacing?: ScanPacing | null;
}

export interface FindingMark {
  ts_ms: number;
  fingerprint: string;
  severity: Severity;
  rule_id: string;
  path: string;
}

export interface AlertMark {
  ts_ms: number;
  fingerprint: string;
  rule: string;
  state: string;
  severity: Severity;
}

export interface Annotations {
  scans: ScanWindow[];
  findings: FindingMark[];
  alerts: AlertMark[];
}

export interface Triage {
  author: string | null;
  reason: string;
  decided_ms: number;
  expires_ms: number | null;
}

export interface FindingJson {
  fingerprint: string;
  rule_id: string;
  scanner: string;
  severity: Severity;
  message: string;
  path: string;
  line: number;
  end_line: number | null;
  column: number | null;
  category: string;
  confidence: string | null;
  cwe: number | null;
  snippet: string | null;
  help_url: string | null;
  properties: Record<string, unknown>;
  state: "open" | "false_positive" | "accepted_risk" | "fixed";
  is_new: boolean;
  scan_id: string;
  triage: Triage | null;
}

export interface Matcher {
  name: string;
  value: string;
  op: "=" | "!=" | "=~" | "!~";
}

export interface Silence {
  id: string;
  matchers: Matcher[];
  starts_ms: number;
  ends_ms: number;
  author: string;
  reason: string;
  active: boolean;
}

export interface Correlation {
  name: string;
  labels: Record<string, string>;
  effect_pct: number;
  q_value: number;
  ks_p: number;
  mw_p: number;
  volume_score: number;
  onset_lag_ms: number | null;
  direction: string;
  significant: boolean;
  n_inside: number;
  n_quiet: number;
  inside_median: number;
  quiet_median: number;
  inside_quantiles: number[];
  quiet_quantiles: number[];
}

export interface Advice {
  id: string;
  title: string;
  severity: Severity;
  kind: "security" | "performance" | "both";
  detail: string;
  evidence: { label: string; value: string | number | null }[];
  action: string;
}

export interface GateCondition {
  name: string;
  category: string;
  status: string;
  measured: number | string | null;
  threshold: number | string | null;
  evidence: string;
}

export interface GateRun {
  run_id: string;
  target: string;
  started_ms: number;
  finished_ms: number;
  verdict: "pass" | "block" | "cannot_evaluate";
  conditions: GateCondition[];
  commit: string | null;
  summary: string;
}

export interface BenchmarkResult {
  name: string;
  source: string;
  timestamp_ms: number;
  machine: string;
  commit: string | null;
  status: string;
  stats: Record<string, number>;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  timestamp_ms: number;
  value: number;
}

/** The JSON form of a bus event as the stream sends it. */
export interface StreamEvent {
  type: string;
  topic: string;
  event: Record<string, unknown> & { id: string; ts_ms: number; host: string };
}

/** A target's entry in ``GET /api/v1/fleet/targets``. */
export interface FleetTarget {
  target: string;
  last_scan: ScanJson | null;
  // Counts over the newest finished scan with today's triage (the overview's definition).
  findings: {
    scan_id: string | null;
    severity_counts: Record<string, number>;
    violations: number;
    new_findings: number;
  };
  gate: { run_id: string; verdict: GateRun["verdict"]; finished_ms: number; commit: string | null } | null;
  // Null for a target whose newest finished scan is an import (it cost nothing here).
  scan_cost: { scan_id: string; duration_ms: number; cpu_seconds: number | null } | null;
  alerts: FleetAlertCounts;
}

export interface FleetAlertCounts {
  firing: number;
  silenced: number;
}

/** A host's entry in ``GET /api/v1/fleet/hosts``. */
export interface FleetHost {
  host: string;
  latest: { cpu_percent: number | null; memory_percent: number | null; load_1m: number | null };
  last_seen_ms: number | null;
  alerts: FleetAlertCounts;
}

/** A page of ``GET /api/v1/fleet/targets`` or ``/hosts`` (sorted by name). */
export interface FleetPage {
  total: number;
  limit: number;
  offset: number;
  server_ms: number;
}
