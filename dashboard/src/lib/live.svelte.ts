// The live state of the dashboard: the overview, the SSE connection, and
// revision counters that views watch to refetch what an event made stale.
//
// The connection is "live" while the event stream is open; when it drops (or
// an API call gets no answer) it is "reconnecting", and "disconnected" when a
// retry failed or a few seconds passed: the data on screen is then marked
// stale (`stale`, `staleSinceMs`, a class on <body>) and a running scan is no
// longer claimed to be running. Retries back off (1, 2, 4, 8, 10 s while the
// page is visible) and each first asks the API (the overview): no answer means
// still down, 401 means a token is needed (the prompt opens), any other answer
// reopens the stream. On recovery the overview is reloaded, every `rev` is
// bumped so views refetch, and metric samples of the gap are read from the API
// and handed to `onSamples` listeners (the stream never replays samples, and a
// restarted server has no record of what a browser missed).
//
// All times shown are the server's (`serverNow()`, clock.ts): `now` is the
// server's clock, so a fresh event never reads as "in the future".

import { untrack } from "svelte";
import { api, ApiError, apiSignals, errorText, getToken, isNetworkError, type TokenRequest } from "./api";
import { serverClock, serverNow } from "./clock";
import { scope } from "./scope.svelte";
import { parseHash } from "./router.svelte";
import type { LiveThrottle } from "./pacing";
import type {
  AlertJson,
  GateRun,
  Overview,
  QuerySeries,
  Sample,
  ScanJson,
  SecurityMetrics,
  StreamEvent,
} from "./types";

export { serverNow } from "./clock";

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

// security.> holds security.finding.triaged; alerts.> holds alerts.acknowledged,
// alerts.silence.added and alerts.silence.expired.
export const TOPICS = "security.>,alerts.>,metrics.recorded,gate.>,perf.benchmarks.recorded";
const TREND_LIMIT = 50;
const OVERVIEW_REFRESH_MS = 30000;
/** How long a dropped stream may take to come back before the page says it is disconnected. */
export const STALE_AFTER_MS = 3000;
/** The longest wait between retries while the page is visible, and while it is hidden. */
export const RETRY_CAP_MS = 10_000;
export const RETRY_CAP_HIDDEN_MS = 60_000;
/** A stream must stay open this long before its retries start from 1 s again. */
const STABLE_MS = 5000;
/** Samples of at most this much of a gap are read back after an outage, of at most this many metrics. */
const BACKFILL_MAX_MS = 15 * 60_000;
const BACKFILL_MAX_NAMES = 40;
/** Notices stay this long (ms) unless dismissed; at most this many at once. */
export const NOTICE_MS = 10_000;
const NOTICES_MAX = 4;
/** Event ids remembered to drop events a resumed stream sends twice. */
const SEEN_IDS = 1000;

export type ConnectionState = "connecting" | "live" | "reconnecting" | "disconnected" | "unauthorized";

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

/** A short note of what someone else did (an acknowledgement, a triage, a silence). */
export interface Notice {
  id: number;
  kind: "ack" | "triage" | "silence" | "silence-expired";
  text: string;
  ts_ms: number;
}

type SamplesListener = (samples: Sample[]) => void;

/** The backoff before retry number `attempt` (1, 2, 4 ... s, at most `capMs`). */
export function retryDelay(attempt: number, capMs: number): number {
  return Math.min(1000 * 2 ** Math.max(0, attempt - 1), capMs);
}

const TRIAGE_WORDS: Record<string, string> = {
  false_positive: "false positive",
  accepted_risk: "accepted risk",
  open: "open (reopened)",
};

function matchersText(matchers: unknown): string {
  if (!Array.isArray(matchers)) return "";
  // Each matcher is {name, value, op}: "alertname=HighCpu", "host=~web-.*".
  return matchers
    .map((m) => (m ?? {}) as Record<string, string>)
    .filter((m) => m.name)
    .map((m) => `${m.name}${m.op ?? "="}${m.value ?? ""}`)
    .join(", ");
}

/** The words of a notice for an event of another user, or null for other events. */
export function noticeText(type: string, body: Record<string, unknown>): string | null {
  const author = String(body.author ?? "") || "someone";
  switch (type) {
    case "AlertAcknowledged": {
      const alert = (body.alert ?? {}) as Partial<AlertJson>;
      const note = String(body.note ?? "");
      return `alert ${alert.rule ?? alert.fingerprint ?? "?"} acknowledged by ${author}${note ? `: ${note}` : ""}`;
    }
    case "FindingTriaged": {
      const state = String(body.state ?? "");
      const fp = String(body.fingerprint ?? "");
      const reason = String(body.reason ?? "");
      return `finding ${fp.slice(0, 12)}${fp.length > 12 ? "…" : ""} triaged as ${TRIAGE_WORDS[state] ?? state} by ${author}${reason ? `: ${reason}` : ""}`;
    }
    case "SilenceAdded": {
      const what = matchersText(body.matchers);
      const ends = Number(body.ends_ms);
      const until = Number.isFinite(ends) ? ` until ${new Date(ends).toLocaleString()}` : "";
      return `silence added by ${author}${what ? ` for ${what}` : ""}${until}`;
    }
    case "SilenceExpired":
      return `silence #${String(body.silence_id ?? "?")} expired`;
    default:
      return null;
  }
}

/** A silence as `GET /api/v1/silences` gives it (the parts the page needs). */
export interface SilenceJson {
  id: number;
  matchers: { name: string; value: string; op?: string }[];
  starts_ms: number;
  ends_ms: number;
}

/** Whether one matcher holds for `labels` (a missing label is ""; regexes match whole values, as Alertmanager's). */
export function matcherHolds(m: SilenceJson["matchers"][number], labels: Record<string, string>): boolean {
  const value = labels[m.name] ?? "";
  const op = m.op ?? "=";
  if (op === "=") return value === m.value;
  if (op === "!=") return value !== m.value;
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${m.value})$`);
  } catch {
    return false;
  }
  return op === "=~" ? re.test(value) : !re.test(value);
}

/** Whether a silence in force at `nowMs` covers an alert of `labels`. */
export function isSilenced(silences: readonly SilenceJson[], labels: Record<string, string>, nowMs: number): boolean {
  return silences.some(
    (s) => s.starts_ms <= nowMs && nowMs < s.ends_ms && s.matchers.length > 0 && s.matchers.every((m) => matcherHolds(m, labels)),
  );
}

/** Whether something about `target`/`host` (undefined: not about one) is in the page's scope. */
function inScope(target: string | undefined, host: string | undefined): boolean {
  if (scope.target && target !== undefined && target !== scope.target) return false;
  return !scope.host || host === undefined || host === scope.host;
}

/** A key naming a scope (target and host; "" for all). */
export function scopeKey(where: { target?: string; host?: string }): string {
  return `${where.target ?? ""}\u0000${where.host ?? ""}`;
}

// The overview of the page's first scope (from the address), asked for as the
// module loads: before the reads of the views and the scope bar, so the counts
// are drawn first. `loadOverview` takes its answer once.
let firstOverview: { key: string; read: Promise<Overview> } | null = null;
if (typeof window !== "undefined" && import.meta.env.MODE !== "test") {
  const params = parseHash(window.location.hash).params;
  const where: { target?: string; host?: string } = {};
  const target = params.get("target");
  const host = params.get("host");
  if (target) where.target = target;
  if (host) where.host = host;
  const read = api.get<Overview>("/api/v1/overview", where);
  read.catch(() => undefined);
  firstOverview = { key: scopeKey(where), read };
}

class LiveState {
  overview = $state<Overview | null>(null);
  overviewError = $state<string | null>(null);
  /** The scope (target, host) `overview` and `overviewError` are of (null: none loaded yet). */
  overviewScope = $state<string | null>(null);
  connection = $state<ConnectionState>("connecting");
  errors = $state<{ id: number; text: string }[]>([]);
  recentViolations = $state<RecentViolation[]>([]);
  lastGate = $state<GateRun | null>(null);
  eventsSeen = $state(0);
  /** The server's time of the last event (ms). */
  lastEventMs = $state<number | null>(null);
  /** The server's clock (ms), updated every few seconds and on events. */
  now = $state(serverNow());
  // Bumped when an event makes a view's data stale; views refetch on change.
  rev = $state({ scans: 0, findings: 0, alerts: 0, gate: 0, baselines: 0 });
  // Running scans' latest throttling (ScanThrottled), by scan id, until they end.
  throttling = $state<Record<string, LiveThrottle>>({});
  /** Whether what is on screen may be out of date (the server has not been heard from). */
  stale = $state(false);
  /** The server's time of the last contact before the data went stale (null: never any). */
  staleSinceMs = $state<number | null>(null);
  /** The server's time of the last answer or event. */
  lastContactMs = $state<number | null>(null);
  /** When (browser clock, ms) the next attempt to reconnect is due; null when none is planned. */
  retryAtMs = $state<number | null>(null);
  /** A scan that was running when contact was lost: its state is unknown until the server answers. */
  staleScan = $state<ScanJson | null>(null);
  /** What others did, shown briefly (newest last). */
  notices = $state<Notice[]>([]);
  /** The API token kept in this browser ("" when none). */
  token = $state(getToken());
  /** Why the token prompt is open (null: closed). */
  tokenPrompt = $state<{ reason: string | null } | null>(null);

  #source: EventSource | null = null;
  #attempt = 0;
  #openedAt = 0;
  #everLive = false;
  #started = false;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #staleTimer: ReturnType<typeof setTimeout> | null = null;
  #refetchTimer: ReturnType<typeof setTimeout> | null = null;
  #throttleTimer: ReturnType<typeof setTimeout> | null = null;
  #listeners = new Set<SamplesListener>();
  #nextErrorId = 1;
  #nextNoticeId = 1;
  #overviewSeq = 0;
  /** The scope of the last overview asked for (the scope effect asks again only on a change). */
  #overviewAsked: string | null = null;
  #lastEventId: string | null = null;
  #seenIds = new Set<string>();
  #seenOrder: string[] = [];
  // Live sample batches held back while the gap of an outage is read from the API.
  #held: Sample[][] | null = null;
  // Silences in force, to tell whether an alert an event brings is silenced (the event does not say).
  #silences: SilenceJson[] = [];
  #promptDismissed = false;
  // The server's time of the last contact before the stream dropped (where reading back samples starts).
  #gapFromMs: number | null = null;

  /** Alerts firing and not silenced: what the Alerts badge counts. */
  get firingCount(): number {
    return this.overview?.alerts.firing.filter((a) => !a.silenced).length ?? 0;
  }

  /** Show an error in the banner (deduplicated, newest last, at most five). Requests that got no answer go to the connection indicator instead. */
  report(err: unknown): void {
    if (isNetworkError(err)) {
      this.#unreachable();
      return;
    }
    // A read refused for want of a token: the token prompt says so (a refused write stays in the banner too).
    if (err instanceof ApiError && (err.status === 401 || err.code === "invalid_token") && err.where?.startsWith("GET ")) return;
    const text = errorText(err);
    if (this.errors.some((e) => e.text === text)) return;
    this.errors = [...this.errors.slice(-4), { id: this.#nextErrorId++, text }];
  }

  dismiss(id: number): void {
    this.errors = this.errors.filter((e) => e.id !== id);
  }

  dismissNotice(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
  }

  /**
   * Load the overview of the scope in view. An answer to an older request (a
   * previous scope, or one overtaken by a newer load) is dropped. Returns what
   * came of it: "ok", "down" (no answer), "token" (refused for a token) or "error".
   */
  async loadOverview(): Promise<"ok" | "down" | "token" | "error"> {
    const seq = ++this.#overviewSeq;
    const where = scope.scopeParams();
    const key = scopeKey(where);
    this.#overviewAsked = key;
    // The read sent as the page loaded, when of this scope and answered; else a new one.
    const first = firstOverview;
    firstOverview = null;
    // The overview on screen is of another scope: it must not stand for this one
    // (loading, or the error, shows until this scope's answer arrives).
    if (this.overview !== null && this.overviewScope !== key) {
      this.overview = null;
      this.staleScan = null;
    }
    if (this.overviewScope !== key) this.overviewError = null;
    this.overviewScope = key;
    try {
      const overview = await (first?.key === key
        ? first.read.catch(() => api.get<Overview>("/api/v1/overview", where))
        : api.get<Overview>("/api/v1/overview", where));
      if (seq === this.#overviewSeq) {
        this.overview = overview;
        this.overviewError = null;
        this.staleScan = null;
      }
      return "ok";
    } catch (err) {
      if (isNetworkError(err)) {
        // Disconnected: the overview of this same scope stays (marked stale); none is shown for another.
        if (seq === this.#overviewSeq && this.overview === null) this.overviewError = errorText(err);
        this.#unreachable();
        return "down";
      }
      const status = (err as { status?: number }).status ?? 0;
      if (seq === this.#overviewSeq) {
        this.overviewError = errorText(err);
        this.report(err);
      }
      return status === 401 || status === 403 ? "token" : "error";
    }
  }

  /**
   * Resolves once the server's clock is known (at once when it is): a window's
   * end or a silence's end sent to the server is computed after this, not on the
   * browser's clock before the first answer. Any answer will do (one without
   * the server's time leaves only the browser's clock to go by).
   */
  clockKnown(): Promise<void> {
    if (serverClock.known) return Promise.resolve();
    return new Promise((resolve) => {
      const stop = apiSignals.onContact(() => {
        stop();
        resolve();
      });
    });
  }

  /** Read the silences in force (for alerts events bring; the overview leaves silenced ones out). */
  async loadSilences(): Promise<void> {
    try {
      const res = await api.get<{ silences: SilenceJson[] }>("/api/v1/silences", { active: true });
      this.#silences = res.silences;
    } catch {
      // Kept as they were: the overview's refetch corrects any alert shown meanwhile.
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
    if (this.#started) return;
    this.#started = true;
    setInterval(() => (this.now = serverNow()), 5000);
    serverClock.onChange(() => (this.now = serverNow()));
    // Now and then regardless of events: a failing store writes no events to tell of it.
    setInterval(() => this.scheduleRefetch(0), OVERVIEW_REFRESH_MS);
    apiSignals.onContact(() => {
      this.#touch();
      // The server answers again while the stream waits for its next retry: retry now.
      if (this.connection === "disconnected" && this.#source === null && this.#retryTimer !== null) this.#retry();
    });
    apiSignals.onUnreachable(() => this.#unreachable());
    apiSignals.onTokenNeeded((req) => this.#tokenNeeded(req));
    apiSignals.onTokenChanged((token) => {
      this.token = token;
    });
    document.addEventListener("visibilitychange", () => {
      // Back in view while disconnected: try now rather than at the end of a long hidden backoff.
      if (!document.hidden && this.retryAtMs !== null) this.#retry();
    });
    // The overview of the scope in view: loaded now and again whenever the target or host changes.
    $effect.root(() => {
      $effect(() => {
        const key = scopeKey(scope.scopeParams());
        untrack(() => {
          if (key !== this.#overviewAsked) void this.loadOverview();
        });
      });
      // Every view is marked while the data may be stale, without each doing anything.
      $effect(() => {
        document.body.classList.toggle("stale", this.stale);
        if (this.stale) document.body.dataset.staleSince = String(this.staleSinceMs ?? "");
        else delete document.body.dataset.staleSince;
      });
    });
    void this.loadSilences();
    this.connect();
  }

  /** Open (or reopen) the event stream now, resuming after the last event seen. */
  connect(): void {
    this.#clearTimers();
    this.#close();
    const params = new URLSearchParams({ topics: TOPICS });
    const token = getToken();
    if (token) params.set("token", token);
    // The server replays what it still holds after this id; an id of a previous
    // server (restarted) replays its events from that instant on, and whatever
    // is older is read again from the API on recovery (see #recover).
    if (this.#lastEventId) params.set("last_event_id", this.#lastEventId);
    const source = new EventSource(`/api/v1/stream?${params.toString()}`);
    this.#source = source;
    if (this.connection === "live" || this.connection === "unauthorized") this.connection = "reconnecting";
    source.onopen = () => {
      if (source === this.#source) this.#opened();
    };
    source.onerror = () => {
      if (source !== this.#source) return;
      // We retry ourselves (with backoff, after asking the API why), not the browser.
      this.#close();
      this.#lost();
    };
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (msg) => this.#onMessage(msg as MessageEvent<string>));
    }
    // Events without an explicit type still carry their type in the JSON.
    source.onmessage = (msg) => this.#onMessage(msg);
  }

  /** Try to reach the server now (the "retry now" button). */
  retryNow(): void {
    this.#retry();
  }

  /** Open the token prompt (the navigation's token button). */
  openTokenPrompt(reason: string | null = null): void {
    this.tokenPrompt = { reason };
  }

  /** Close the token prompt; reads refused again do not reopen it until the token changes (writes do). */
  closeTokenPrompt(): void {
    this.tokenPrompt = null;
    this.#promptDismissed = true;
  }

  /** The token was saved or forgotten: reload everything with it and reopen the stream. */
  tokenSaved(): void {
    this.token = getToken();
    this.#promptDismissed = false;
    this.tokenPrompt = null;
    // Drop the banner's refusals: they were for the old token.
    this.errors = this.errors.filter((e) => !/^40[13] /.test(e.text));
    void this.loadOverview();
    void this.loadSilences();
    this.bumpAll();
    this.connect();
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

  // ------------------------------------------------------------------ connection

  #close(): void {
    if (this.#source) {
      this.#source.onopen = null;
      this.#source.onerror = null;
      this.#source.close();
      this.#source = null;
    }
  }

  #clearTimers(): void {
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    if (this.#staleTimer !== null) clearTimeout(this.#staleTimer);
    this.#retryTimer = null;
    this.#staleTimer = null;
    this.retryAtMs = null;
  }

  /** The server answered or sent something: note when (server clock), at most once a second. */
  #touch(): void {
    const now = serverNow();
    if (this.lastContactMs === null || now - this.lastContactMs >= 1000) this.lastContactMs = now;
  }

  #opened(): void {
    const recovering = this.#everLive || this.connection !== "connecting" || this.stale;
    // The gap began at the last contact before the drop (a retry's answer is contact too, but later).
    const gapFrom = this.#gapFromMs ?? this.staleSinceMs ?? this.lastContactMs;
    this.#gapFromMs = null;
    if (this.#openedAt === 0 || Date.now() - this.#openedAt > STABLE_MS || !recovering) this.#attempt = 0;
    this.#openedAt = Date.now();
    this.#clearTimers();
    this.connection = "live";
    this.#everLive = true;
    this.#touch();
    this.now = serverNow();
    if (recovering) this.#recover(gapFrom);
  }

  /** Back after an outage: reload what may have changed meanwhile. */
  #recover(gapFromMs: number | null): void {
    this.stale = false;
    this.staleSinceMs = null;
    void this.loadOverview();
    void this.loadSilences();
    this.bumpAll();
    void this.#backfill(gapFromMs);
  }

  /** The stream dropped or a retry failed: say so and plan the next attempt. */
  #lost(): void {
    this.#attempt += 1;
    if (this.connection === "live") this.#gapFromMs = this.lastContactMs;
    if (this.connection === "live" || this.connection === "connecting") {
      this.connection = "reconnecting";
      if (this.#staleTimer === null) {
        this.#staleTimer = setTimeout(() => {
          this.#staleTimer = null;
          if (this.connection === "reconnecting") this.#disconnected();
        }, STALE_AFTER_MS);
      }
    } else if (this.connection !== "unauthorized") {
      this.#disconnected();
    }
    this.#schedule(retryDelay(this.#attempt, document.hidden ? RETRY_CAP_HIDDEN_MS : RETRY_CAP_MS));
  }

  #schedule(delayMs: number): void {
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.retryAtMs = Date.now() + delayMs;
    this.#retryTimer = setTimeout(() => this.#retry(), delayMs);
  }

  /** No contact: mark the data stale and stop claiming a scan runs. */
  #disconnected(): void {
    this.connection = "disconnected";
    if (this.stale) return;
    this.stale = true;
    this.staleSinceMs = this.lastContactMs;
    if (this.overview?.scan_running) {
      this.staleScan = this.overview.scan_running;
      this.overview.scan_running = null;
    }
  }

  /** An API request got no answer: the stream is likely gone too; check and reconnect. */
  #unreachable(): void {
    if (this.connection !== "live") return;
    this.#close();
    this.#lost();
  }

  /** Ask the API whether the server is back (and whether it wants a token), then reopen the stream. */
  #retry(): void {
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.retryAtMs = null;
    void this.loadOverview().then((outcome) => {
      if (this.#source !== null || this.#retryTimer !== null) return; // reconnected meanwhile
      if (outcome === "down") this.#lost();
      else if (outcome === "token") {
        if (this.#staleTimer !== null) clearTimeout(this.#staleTimer);
        this.#staleTimer = null;
        this.connection = "unauthorized";
        // A 401/403 is an answer: the server is there, only the token prompt has something to say.
        this.stale = false;
        this.staleSinceMs = null;
      } else this.connect();
    });
  }

  #tokenNeeded(req: TokenRequest): void {
    if (this.#promptDismissed && req.method === "GET") return;
    const why =
      req.status === 401
        ? `This server needs its API token (${req.where} answered 401).`
        : `The server refused the token (${req.where} answered 403: ${req.message}).`;
    this.tokenPrompt = { reason: why };
  }

  // ------------------------------------------------------------------ samples of a gap

  /** Read back the samples of the gap an outage left, and hand them to the listeners before live ones. */
  async #backfill(fromMs: number | null): Promise<void> {
    if (this.#listeners.size === 0 || fromMs === null || this.#held !== null) return;
    this.#held = [];
    const found: Sample[] = [];
    try {
      const end = serverNow() + 1000;
      const start = Math.max(fromMs - 5000, end - BACKFILL_MAX_MS);
      const where = scope.scopeParams();
      const { names } = await api.get<{ names: string[] }>("/api/v1/metrics/names", where);
      const wanted = names.slice(0, BACKFILL_MAX_NAMES);
      // A few at a time: the server admits only so many requests at once.
      for (let i = 0; i < wanted.length; i += 4) {
        const answers = await Promise.all(
          wanted.slice(i, i + 4).map((name) =>
            api.get<{ series: QuerySeries[] }>("/api/v1/metrics/query", { name, start_ms: start, end_ms: end, ...where }),
          ),
        );
        for (const answer of answers) {
          for (const s of answer.series) {
            s.timestamps_ms.forEach((ts, j) => found.push({ name: s.name, labels: s.labels, timestamp_ms: ts, value: s.avg[j] }));
          }
        }
      }
    } catch (err) {
      // Down again: the next recovery reads the gap. Other refusals are for the banner.
      if (!isNetworkError(err)) this.report(err);
    } finally {
      const held = this.#held ?? [];
      this.#held = null;
      found.sort((a, b) => a.timestamp_ms - b.timestamp_ms);
      if (found.length > 0) this.#deliver(found);
      for (const batch of held) this.#deliver(batch);
    }
  }

  #deliver(samples: Sample[]): void {
    for (const listener of this.#listeners) listener(samples);
  }

  // ------------------------------------------------------------------ events

  #onMessage(msg: MessageEvent<string>): void {
    let parsed: StreamEvent;
    try {
      parsed = JSON.parse(msg.data) as StreamEvent;
    } catch {
      this.report(new Error(`the event stream sent data that is not JSON: ${msg.data.slice(0, 80)}`));
      return;
    }
    const id = msg.lastEventId || String(parsed.event?.id ?? "");
    if (id) {
      this.#lastEventId = id;
      // A resumed stream may send an event again (ids within one millisecond): once is enough.
      if (this.#seenIds.has(id)) return;
      this.#seenIds.add(id);
      this.#seenOrder.push(id);
      if (this.#seenOrder.length > SEEN_IDS) this.#seenIds.delete(this.#seenOrder.shift() ?? "");
    }
    this.eventsSeen += 1;
    this.#touch();
    this.lastEventMs = serverNow();
    if (this.lastEventMs - this.now >= 1000) this.now = this.lastEventMs;
    this.apply(parsed);
  }

  #notice(kind: Notice["kind"], type: string, body: Record<string, unknown>): void {
    const text = noticeText(type, body);
    if (text === null) return;
    const notice: Notice = { id: this.#nextNoticeId++, kind, text, ts_ms: Number(body.ts_ms) || serverNow() };
    this.notices = [...this.notices, notice].slice(-NOTICES_MAX);
    setTimeout(() => this.dismissNotice(notice.id), NOTICE_MS);
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
        this.#notice("triage", ev.type, body);
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
        this.#acknowledged(body);
        this.#notice("ack", ev.type, body);
        this.rev.alerts += 1;
        this.scheduleRefetch();
        break;
      case "SilenceAdded":
        this.#silences = [
          ...this.#silences,
          {
            id: Number(body.silence_id),
            matchers: (body.matchers ?? []) as SilenceJson["matchers"],
            starts_ms: Number(body.starts_ms),
            ends_ms: Number(body.ends_ms),
          },
        ];
        this.#notice("silence", ev.type, body);
        this.rev.alerts += 1;
        this.scheduleRefetch();
        break;
      case "SilenceExpired":
        this.#silences = this.#silences.filter((x) => x.id !== Number(body.silence_id));
        this.#notice("silence-expired", ev.type, body);
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
    if (this.overview && inScope(scan.target, undefined)) this.overview.scan_running = scan;
    this.rev.scans += 1;
    this.scheduleRefetch(1000);
  }

  #scanCompleted(body: Record<string, unknown>): void {
    const metrics = body.metrics as SecurityMetrics | undefined;
    if (metrics && metrics.scan_id in this.throttling) {
      const { [metrics.scan_id]: _ended, ...rest } = this.throttling;
      this.throttling = rest;
    }
    if (metrics && this.overview && inScope(metrics.target, undefined)) {
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
    if (alert && this.overview && inScope(alert.labels?.target, alert.labels?.host)) {
      const prev = String(body.previous_state ?? "");
      const before = this.overview.alerts.firing.find((a) => a.fingerprint === alert.fingerprint);
      const firing = this.overview.alerts.firing.filter((a) => a.fingerprint !== alert.fingerprint);
      // The event does not say whether a silence covers the alert: keep what the
      // overview said, else judge by the silences in force. The overview lists
      // only unsilenced firing alerts (it counts the others), and so does this.
      const silenced = alert.silenced ?? before?.silenced ?? isSilenced(this.#silences, alert.labels ?? {}, serverNow());
      if (alert.state === "firing" && !silenced) firing.unshift({ ...alert, silenced });
      this.overview.alerts.firing = firing;
      const pendingDelta = (alert.state === "pending" ? 1 : 0) - (prev === "pending" ? 1 : 0);
      this.overview.alerts.pending = Math.max(0, this.overview.alerts.pending + pendingDelta);
    }
    this.rev.alerts += 1;
    this.scheduleRefetch();
  }

  #acknowledged(body: Record<string, unknown>): void {
    const alert = body.alert as AlertJson | undefined;
    if (!alert || !this.overview) return;
    this.overview.alerts.firing = this.overview.alerts.firing.map((a) =>
      a.fingerprint === alert.fingerprint
        ? { ...a, acknowledged_by: String(body.author ?? "") || a.acknowledged_by, acknowledgement_note: String(body.note ?? "") || null }
        : a,
    );
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
          if (!inScope(s.labels.target, s.labels.host)) continue;
          latest[s.name] = s.value;
        }
      }
    }
    if (this.#held !== null) this.#held.push(samples);
    else this.#deliver(samples);
  }
}

export const live = new LiveState();
