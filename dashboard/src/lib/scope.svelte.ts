// The scope and time range every view shows, kept in the URL (Grafana-like):
//   target=<project>  host=<machine>  (absent: all)
//   from=now-1h&to=now            a relative range that follows the clock (live)
//   from=1733500000000&to=...     an absolute range in epoch milliseconds (paused)
// Views read `scope.target`, `scope.host`, `scope.window(now)` and pass
// `scope.apiParams(now)` to the API; they never parse the URL themselves.

import { route } from "./router.svelte";

export const PRESETS: Record<string, number> = {
  "15m": 15 * 60_000,
  "1h": 3_600_000,
  "6h": 6 * 3_600_000,
  "24h": 24 * 3_600_000,
  "7d": 7 * 24 * 3_600_000,
};
export const DEFAULT_PRESET = "1h";
/**
 * How far past now a panned or zoomed-out paused range may end and stay paused.
 * "Now" moves between clicks (the clock ticks, its offset is re-estimated): those
 * few seconds must not decide whether a range ending at now turns live.
 */
export const NOW_SLACK_MS = 5_000;
/** The shortest range zooming or a custom range may select. */
export const MIN_SPAN_MS = 60_000;
/** The longest relative range ("now-10y" or less); longer ones are invalid. */
export const MAX_SPAN_MS = 3653 * 86_400_000;
/** The last instant a JavaScript date can hold (epoch ms); later ones are invalid. */
export const MAX_EPOCH_MS = 8_640_000_000_000_000;

export interface TimeWindow {
  start_ms: number;
  end_ms: number;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * "now-1h" -> 3600000 (how far before now); null when the text is not
 * relative or reaches back further than MAX_SPAN_MS.
 */
export function parseRelative(text: string): number | null {
  if (text === "now") return 0;
  const m = /^now-(\d{1,6})([smhdw])$/.exec(text);
  if (!m) return null;
  const span = Number(m[1]) * UNIT_MS[m[2]];
  return span <= MAX_SPAN_MS ? span : null;
}

/** "1733500000000" -> that instant; null when the text is not an epoch in ms a date can hold. */
export function parseAbsolute(text: string): number | null {
  if (!/^\d{10,16}$/.test(text)) return null;
  const ms = Number(text);
  return Number.isSafeInteger(ms) && ms <= MAX_EPOCH_MS ? ms : null;
}

/**
 * The relative text for a span: 3600000 -> "now-1h". A span that is no whole
 * number of any unit is rounded, in the smallest unit that keeps the count
 * within the 6 digits parseRelative reads.
 */
export function relativeText(spanMs: number): string {
  for (const unit of ["w", "d", "h", "m", "s"]) {
    const size = UNIT_MS[unit];
    if (spanMs % size === 0 && spanMs >= size && spanMs / size <= 999_999) return `now-${spanMs / size}${unit}`;
  }
  for (const unit of ["s", "m", "h", "d", "w"]) {
    const count = Math.max(1, Math.round(spanMs / UNIT_MS[unit]));
    if (count <= 999_999) return `now-${count}${unit}`;
  }
  return `now-999999w`;
}

/**
 * Resolve URL range texts against `now`; invalid, reversed or out-of-range
 * input (before 1970, after the last date, longer than MAX_SPAN_MS back)
 * falls back to the default.
 */
export function resolveRange(from: string | null, to: string | null, now: number): TimeWindow & { live: boolean } {
  const fallback = { start_ms: now - PRESETS[DEFAULT_PRESET], end_ms: now, live: true };
  if (!from) return fallback;
  const toText = to ?? "now";
  const relTo = parseRelative(toText);
  const end = relTo !== null ? now - relTo : parseAbsolute(toText);
  const relFrom = parseRelative(from);
  const start = relFrom !== null ? now - relFrom : parseAbsolute(from);
  if (start === null || end === null || end - start < 1000) return fallback;
  if (start < 0 || end > MAX_EPOCH_MS) return fallback;
  return { start_ms: start, end_ms: end, live: toText === "now" };
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** A span in words, in its largest whole unit: 3600000 -> "1 h", 5400000 -> "90 min". */
export function spanWords(spanMs: number): string {
  const units: [number, string][] = [
    [86_400_000, "d"],
    [3_600_000, "h"],
    [60_000, "min"],
  ];
  for (const [size, name] of units) if (spanMs >= size && spanMs % size === 0) return `${spanMs / size} ${name}`;
  if (spanMs >= 60_000) return `${Math.round(spanMs / 60_000)} min`;
  return `${Math.max(1, Math.round(spanMs / 1000))} s`;
}

/** "7 Dec 10:00" in local time (the year only when it is not `now`'s). */
function instantWords(ms: number, now: number): string {
  const d = new Date(ms);
  const year = d.getFullYear() !== new Date(now).getFullYear() ? ` ${d.getFullYear()}` : "";
  return `${d.getDate()} ${MONTHS[d.getMonth()]}${year} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/**
 * The range in words: "last 1 h" for a live range, "7 Dec 10:00 – 11:00"
 * for a fixed one within a day, "6 Dec 22:00 – 7 Dec 02:00" across days.
 */
export function describeRange(window: TimeWindow, live: boolean, now: number): string {
  if (live) return `last ${spanWords(window.end_ms - window.start_ms)}`;
  const start = instantWords(window.start_ms, now);
  const a = new Date(window.start_ms);
  const b = new Date(window.end_ms);
  const sameDay =
    a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  const end = sameDay ? `${pad2(b.getHours())}:${pad2(b.getMinutes())}` : instantWords(window.end_ms, now);
  return `${start} – ${end}`;
}

/** An instant as a `datetime-local` input value (local time, minutes): "2026-12-07T10:00". */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** A `datetime-local` value as an instant; null when empty or not a date and time. */
export function fromLocalInput(text: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(text.trim());
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1).map((v) => Number(v ?? 0));
  const d = new Date(year, month - 1, day, hour, minute, second);
  // Reject dates the calendar does not have (Date rolls 31 Feb over to March).
  if (d.getMonth() !== month - 1 || d.getDate() !== day) return null;
  return d.getTime();
}

/**
 * Check a custom range typed as two `datetime-local` values: the range, or
 * an error saying what is wrong and with which end.
 */
export function checkCustomRange(fromText: string, toText: string): TimeWindow | { error: string } {
  if (!fromText.trim() && !toText.trim()) return { error: "choose a start and an end" };
  if (!fromText.trim()) return { error: "choose a start (from)" };
  if (!toText.trim()) return { error: "choose an end (to)" };
  const start = fromLocalInput(fromText);
  if (start === null) return { error: `the start (from) "${fromText}" is not a date and time` };
  const end = fromLocalInput(toText);
  if (end === null) return { error: `the end (to) "${toText}" is not a date and time` };
  if (end <= start) return { error: "the end (to) must be after the start (from)" };
  return { start_ms: start, end_ms: end };
}

class Scope {
  /** The target (scanned project) in view; "" means every target. */
  get target(): string {
    return route.params.get("target") ?? "";
  }

  /** The host in view; "" means every host. */
  get host(): string {
    return route.params.get("host") ?? "";
  }

  get fromText(): string {
    return route.params.get("from") ?? `now-${DEFAULT_PRESET}`;
  }

  get toText(): string {
    return route.params.get("to") ?? "now";
  }

  /** Whether the range follows the clock (a relative range ending now). */
  get live(): boolean {
    return resolveRange(this.fromText, this.toText, Date.now()).live;
  }

  /** The preset in use ("1h"...), or null for any other range. */
  get preset(): string | null {
    const r = resolveRange(this.fromText, this.toText, Date.now());
    if (!r.live) return null;
    const span = r.end_ms - r.start_ms;
    const hit = Object.entries(PRESETS).find(([, ms]) => ms === span);
    return hit ? hit[0] : null;
  }

  /** The range in words at `now`: "last 1 h" or "7 Dec 10:00 – 11:00". */
  describe(now: number): string {
    return describeRange(this.window(now), this.live, now);
  }

  /** The range as instants at `now`. */
  window(now: number): TimeWindow {
    const { start_ms, end_ms } = resolveRange(this.fromText, this.toText, now);
    return { start_ms, end_ms };
  }

  /** `target` and `host` for an API call (absent when "all"). */
  scopeParams(): { target?: string; host?: string } {
    const out: { target?: string; host?: string } = {};
    if (this.target) out.target = this.target;
    if (this.host) out.host = this.host;
    return out;
  }

  /** Scope plus `start_ms`/`end_ms` at `now`, for endpoints that take a time range. */
  apiParams(now: number): { target?: string; host?: string; start_ms: number; end_ms: number } {
    return { ...this.scopeParams(), ...this.window(now) };
  }

  setTarget(target: string): void {
    route.setShared({ target });
  }

  setHost(host: string): void {
    route.setShared({ host });
  }

  /** A relative range ending now ("1h" or any span in ms): live again. */
  setPreset(preset: string | number): void {
    const span = typeof preset === "number" ? preset : (PRESETS[preset] ?? PRESETS[DEFAULT_PRESET]);
    const ms = Math.min(MAX_SPAN_MS, Math.max(MIN_SPAN_MS, Math.round(span)));
    route.setShared({ from: relativeText(ms), to: "now" });
  }

  /** A fixed range (a custom range, a drag-to-zoom, a pan): not live. */
  setAbsolute(startMs: number, endMs: number): void {
    let start = Math.round(Math.min(startMs, endMs));
    let end = Math.round(Math.max(startMs, endMs));
    if (end - start < MIN_SPAN_MS) {
      const mid = (start + end) / 2;
      start = Math.round(mid - MIN_SPAN_MS / 2);
      end = start + MIN_SPAN_MS;
    }
    // Keep both ends on instants a date can hold (a pan or zoom never leaves 1970..max).
    start = Math.max(0, start);
    end = Math.min(MAX_EPOCH_MS, Math.max(end, start + MIN_SPAN_MS));
    route.setShared({ from: String(start), to: String(end) });
  }

  /** Move the range by a fraction of its span (negative: back in time); stops at now. */
  pan(fraction: number, now: number): void {
    const w = this.window(now);
    const span = w.end_ms - w.start_ms;
    const shift = Math.round(span * fraction);
    if (w.end_ms + shift > now + NOW_SLACK_MS) {
      this.setPreset(span);
      return;
    }
    this.setAbsolute(w.start_ms + shift, w.end_ms + shift);
  }

  /** Double the span around its middle (a live range stays live, twice as long). */
  zoomOut(now: number): void {
    const w = this.window(now);
    const span = w.end_ms - w.start_ms;
    // A paused range that would reach past now follows the clock instead.
    if (this.live || w.end_ms + span / 2 > now + NOW_SLACK_MS) {
      this.setPreset(span * 2);
      return;
    }
    this.setAbsolute(w.start_ms - span / 2, w.end_ms + span / 2);
  }

  /** Live: follow the clock with the same span. Paused: freeze the range shown at `now`. */
  setLive(on: boolean, now: number): void {
    const w = this.window(now);
    if (on) this.setPreset(w.end_ms - w.start_ms);
    else this.setAbsolute(w.start_ms, w.end_ms);
  }
}

export const scope = new Scope();
