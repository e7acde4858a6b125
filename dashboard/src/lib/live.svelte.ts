// The live state of the dashboard: the overview, the SSE connection, and
// revision counters that views watch to refetch what an event made stale.

import { api, errorText, getToken } from "./api";
import type { LiveThrottle } from "./pacing";
import type {
  AlertJson,
  GateRun,
  Overview,
  Sample,
  ScanJson,
  SecurityMetrics,
  StreamEvent,
} from "./types";

export const EVENT_TYPES = [
  "ScanStarted",
  "ScanCompleted",
  "ViolationDetected",
  "BaselineUpdated",
  "MetricsRecorded",
  "AlertChanged",
  "GateEvaluated",
  // What people do, here or in another page, the CLI or another server on the store.
  "FindingTriaged",
  "AlertAcknowledged",
  "SilenceAdded",
  "SilenceExpired",
  "BenchmarksRecorded",
  // The impact budget held a running scan back or let it go.
  "ScanThrottled",
] as const;

const TOPICS = "security.>,alerts.>,metrics.recorded,gate.>,perf.benchmarks.recorded";
const TREND_LIMIT = 50;
const OVERVIEW_REFRESH_MS = 30000;

export type ConnectionState = "connecting" | "live" | "reconnecting" | "down";

export interface RecentViolation {
  ts_ms: number;
  scan_id: string;
  fingerprint: string;
  severity: string;
  rule_id: string;
  path: string;
  line: number;
  is_new: boolean;
}

type SamplesListener = (samples: Sample[]) => void;

class LiveState {
  overview = $state<Overview | null>(null);
  overviewError = $state<string | null>(null);
  connection = $state<ConnectionState>("connecting");
  errors = $state<{ id: number; text: string }[]>([]);
  recentViolations = $state<RecentViolation[]>([]);
  lastGate = $state<GateRun | null>(null);
  eventsSeen = $state(0);
  lastEventMs = $state<number | null>(null);
  now = $state(Date.now());
  // Bumped when an event makes a view's data stale; views refetch on change.
  rev = $state({ scans: 0, findings: 0, alerts: 0, gate: 0, baselines: 0 });
  // Running scans' latest throttling (ScanThrottled), by scan id, until they end.
  throttling = $state<Record<string, LiveThrottle>>({});

  #source: EventSource | null = null;
  #retryMs = 1000;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #refetchTimer: ReturnType<typeof setTimeout> | null = null;
  #throttleTimer: ReturnType<typeof setTimeout> | null = null;
  #listeners = new Set<SamplesListener>();
  #nextErrorId = 1;

  /** Show an error in the banner (deduplicated, newest last, at most five). */
  report(err: unknown): void {
    const text = errorText(err);
    if (this.errors.some((e) => e.text === text)) return;
    this.errors = [...this.errors.slice(-4), { id: this.#nextErrorId++, text }];
  }

  dismiss(id: number): void {
    this.errors = this.errors.filter((e) => e.id !== id);
  }

  async loadOverview(): Promise<void> {
    try {
      this.overview = await api.get<Overview>("/api/v1/overview");
      this.overviewError = null;
    } catch (err) {
      this.overviewError = errorText(err);
      this.report(err);
    }
  }

  /** Refetch the overview soon, coalescing bursts of events into one request. */
  scheduleRefetch(delayMs = 400): void {
    if (this.#refetchTimer !== null) return;
    this.#refetchTimer = setTimeout(() => {
      this.#refetchTimer = null;
      void this.loadOverview();
    }, delayMs);
  }

  onSamples(listener: SamplesListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  start(): void {
    setInterval(() => (this.now = Date.now()), 5000);
    // Now and then regardless of events: a failing store writes no events to tell of it.
    setInterval(() => this.scheduleRefetch(0), OVERVIEW_REFRESH_MS);
    void this.loadOverview();
    this.connect();
  }

  /** Open (or reopen) the event stream. The browser resumes with Last-Event-ID on its own retries. */
  connect(): void {
    this.#source?.close();
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    const token = getToken();
    const params = new URLSearchParams({ topics: TOPICS });
    if (token) params.set("token", token);
    const source = new EventSource(`/api/v1/stream?${params.toString()}`);
    this.#source = source;
    this.connection = this.connection === "live" ? "reconnecting" : "connecting";
    source.onopen = () => {
      const wasDown = this.connection !== "connecting";
      this.connection = "live";
      this.#retryMs = 1000;
      // After an outage events may have been missed beyond the replay buffer: resync.
      if (wasDown) {
        void this.loadOverview();
        this.bumpAll();
      }
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream (e.g. 401/5xx): the browser gives up, so we retry with backoff.
        this.connection = "down";
        this.#retryTimer = setTimeout(() => this.connect(), this.#retryMs);
        this.#retryMs = Math.min(this.#retryMs * 2, 30000);
      } else {
        this.connection = "reconnecting";
      }
    };
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (msg) => this.#onMessage(msg as MessageEvent<string>));
    }
    // Events without an explicit type still carry their type in the JSON.
    source.onmessage = (msg) => this.#onMessage(msg);
  }

  bumpAll(): void {
    this.rev = {
      scans: this.rev.scans + 1,
      findings: this.rev.findings + 1,
      alerts: this.rev.alerts + 1,
      gate: this.rev.gate + 1,
      baselines: this.rev.baselines + 1,
    };
  }

  #onMessage(msg: MessageEvent<string>): void {
    let parsed: StreamEvent;
    try {
      parsed = JSON.parse(msg.data) as StreamEvent;
    } catch {
      this.report(new Error(`the event stream sent data that is not JSON: ${msg.data.slice(0, 80)}`));
      return;
    }
    this.eventsSeen += 1;
    this.lastEventMs = Date.now();
    this.apply(parsed);
  }

  /** Apply one event to the local state at once, then reconcile with the server shortly after. */
  apply(ev: StreamEvent): void {
    const body = ev.event;
    switch (ev.type) {
      case "ScanStarted":
        this.#scanStarted(body);
        break;
      case "ScanCompleted":
        this.#scanCompleted(body);
        break;
      case "ViolationDetected":
        this.#violation(body);
        break;
      case "BaselineUpdated":
        this.rev.baselines += 1;
        this.rev.findings += 1;
        this.scheduleRefetch();
        break;
      case "AlertChanged":
        this.#alertChanged(body);
        break;
      case "GateEvaluated":
        this.lastGate = (body.result as GateRun | undefined) ?? null;
        this.rev.gate += 1;
        break;
      case "MetricsRecorded":
        this.#metrics(body);
        break;
      case "FindingTriaged":
        // Triage moves findings in or out of the violations the overview counts.
        this.rev.findings += 1;
        this.rev.scans += 1;
        this.scheduleRefetch();
        break;
      case "BenchmarksRecorded":
        this.rev.gate += 1;
        break;
      case "ScanThrottled":
        this.throttling = {
          ...this.throttling,
          [String(body.scan_id ?? "")]: {
            scan_id: String(body.scan_id ?? ""),
            action: String(body.action ?? ""),
            reason: String(body.reason ?? ""),
            throttled_ms: Number(body.throttled_ms ?? 0),
          },
        };
        // A scan's pacing changed: refetch scan records once per burst, not per event.
        if (this.#throttleTimer === null) {
          this.#throttleTimer = setTimeout(() => {
            this.#throttleTimer = null;
            this.rev.scans += 1;
          }, 2000);
        }
        break;
      case "AlertAcknowledged":
      case "SilenceAdded":
      case "SilenceExpired":
        this.rev.alerts += 1;
        this.scheduleRefetch();
        break;
      default:
        break;
    }
  }

  #scanStarted(body: Record<string, unknown>): void {
    const scan: ScanJson = {
      scan_id: String(body.scan_id ?? ""),
      target: String(body.target ?? ""),
      status: "running",
      started_ms: Number(body.ts_ms),
      finished_ms: null,
      metrics: null,
      cost: null,
    };
    if (this.overview) this.overview.scan_running = scan;
    this.rev.scans += 1;
    this.scheduleRefetch(1000);
  }

  #scanCompleted(body: Record<string, unknown>): void {
    const metrics = body.metrics as SecurityMetrics | undefined;
    if (metrics && metrics.scan_id in this.throttling) {
      const { [metrics.scan_id]: _ended, ...rest } = this.throttling;
      this.throttling = rest;
    }
    if (metrics && this.overview) {
      const sec = this.overview.security;
      sec.last_scan = {
        scan_id: metrics.scan_id,
        target: metrics.target,
        status: String(body.status ?? "ok"),
        started_ms: metrics.started_ms,
        finished_ms: metrics.finished_ms,
        metrics,
        cost: null,
      };
      // The scan's own counts until the refetch brings them under today's triage.
      const imported = metrics.kind === "import";
      sec.kind = imported ? "import" : "scan";
      sec.severity_counts = { ...metrics.vulnerability_severity_counts };
      sec.violations = metrics.violations_found;
      sec.new_findings = metrics.new_findings ?? 0;
      sec.false_positives = metrics.false_positives ?? 0;
      sec.accepted_risks = metrics.accepted_risks ?? 0;
      sec.false_positive_rate = metrics.false_positive_rate;
      sec.coverage_percent = imported ? null : metrics.scan_coverage_percent;
      sec.scan_duration_ms = imported ? null : metrics.scan_duration_ms;
      sec.trend = [
        ...sec.trend,
        {
          ts_ms: metrics.finished_ms,
          violations: metrics.violations_found,
          new: metrics.new_findings ?? 0,
          scan_duration_ms: imported ? null : metrics.scan_duration_ms,
        },
      ].slice(-TREND_LIMIT);
      if (this.overview.scan_running?.scan_id === metrics.scan_id) this.overview.scan_running = null;
    }
    this.rev.scans += 1;
    this.rev.findings += 1;
    this.scheduleRefetch();
  }

  #violation(body: Record<string, unknown>): void {
    const f = (body.finding ?? {}) as Record<string, unknown>;
    const item: RecentViolation = {
      ts_ms: Number(body.ts_ms),
      scan_id: String(body.scan_id ?? ""),
      fingerprint: String(f.fingerprint ?? ""),
      severity: String(f.severity ?? "info"),
      rule_id: String(f.rule_id ?? ""),
      path: String(f.path ?? ""),
      line: Number(f.line ?? 0),
      is_new: body.is_new !== false,
    };
    this.recentViolations = [item, ...this.recentViolations].slice(0, 20);
    this.rev.findings += 1;
  }

  #alertChanged(body: Record<string, unknown>): void {
    const alert = body.alert as AlertJson | undefined;
    if (alert && this.overview) {
      const prev = String(body.previous_state ?? "");
      const firing = this.overview.alerts.firing.filter((a) => a.fingerprint !== alert.fingerprint);
      if (alert.state === "firing") firing.unshift({ ...alert, silenced: alert.silenced ?? false });
      this.overview.alerts.firing = firing;
      const pendingDelta = (alert.state === "pending" ? 1 : 0) - (prev === "pending" ? 1 : 0);
      this.overview.alerts.pending = Math.max(0, this.overview.alerts.pending + pendingDelta);
    }
    this.rev.alerts += 1;
    this.scheduleRefetch();
  }

  #metrics(body: Record<string, unknown>): void {
    const samples = (body.samples ?? []) as Sample[];
    if (samples.length === 0) return;
    if (this.overview) {
      const latest = this.overview.performance.latest;
      for (const s of samples) {
        if (s.name === "cpu_percent" || s.name === "memory_percent" || s.name === "load_1m") {
          // Per-host series carry a host label; the headline shows host totals only.
          if (s.labels.cpu && s.labels.cpu !== "total") continue;
          latest[s.name] = s.value;
        }
      }
    }
    for (const listener of this.#listeners) listener(samples);
  }
}

export const live = new LiveState();
