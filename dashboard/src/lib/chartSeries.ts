// What a multi-series chart shows: the series the user chose (a metric and
// label matchers, kept in the URL), which stored series each one draws, how
// they line up on one time axis, and which y axis (unit) each one uses.

import { formatLabels, metricUnit } from "./format";

/** One chosen series: a metric and the labels it must carry (empty: the default pick). */
export interface SeriesSpec {
  name: string;
  match: Record<string, string>;
}

/** The most series one chart takes. */
export const MAX_SPECS = 6;
/** The most lines one chart draws (a series across many hosts is cut here). */
export const MAX_LINES = 12;

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** `cpu_percent{cpu="1",host="a"}` (labels sorted, values quoted as JSON strings); the bare name without labels. */
export function formatSpec(spec: SeriesSpec): string {
  const keys = Object.keys(spec.match).sort();
  if (keys.length === 0) return spec.name;
  return `${spec.name}{${keys.map((k) => `${k}=${JSON.stringify(spec.match[k])}`).join(",")}}`;
}

/** Specs joined by ";" for the URL's `series` parameter. */
export function formatSpecs(specs: readonly SeriesSpec[]): string {
  return specs.map(formatSpec).join(";");
}

export function specKey(spec: SeriesSpec): string {
  return formatSpec(spec);
}

/**
 * Parse the `series` parameter: selectors separated by ";", each a metric
 * name with optional `{label="value",...}` (quotes optional for simple
 * values). Bad selectors are left out and reported, saying which and why.
 */
export function parseSpecs(text: string): { specs: SeriesSpec[]; errors: string[] } {
  const specs: SeriesSpec[] = [];
  const errors: string[] = [];
  const seen = new Set<string>();
  for (const [index, part] of splitTopLevel(text).entries()) {
    const item = part.trim();
    if (!item) continue;
    const parsed = parseSpec(item);
    if (typeof parsed === "string") {
      errors.push(`series ${index + 1} (${item.slice(0, 60)}): ${parsed}`);
      continue;
    }
    const key = specKey(parsed);
    if (seen.has(key)) continue;
    seen.add(key);
    if (specs.length >= MAX_SPECS) {
      errors.push(`series ${index + 1} (${item.slice(0, 60)}): a chart shows at most ${MAX_SPECS} series`);
      continue;
    }
    specs.push(parsed);
  }
  return { specs, errors };
}

/** Split on ";" outside quotes. */
function splitTopLevel(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted && c === "\\" && i + 1 < text.length) {
      cur += c + text[i + 1];
      i += 1;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ";" && !quoted) {
      out.push(cur);
      cur = "";
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out;
}

/** One selector, or the reason it is not one. */
export function parseSpec(text: string): SeriesSpec | string {
  const brace = text.indexOf("{");
  const name = (brace < 0 ? text : text.slice(0, brace)).trim();
  if (!NAME_RE.test(name)) return `"${name}" is not a metric name (letters, digits, _ and :, not starting with a digit)`;
  const match: Record<string, string> = {};
  if (brace < 0) return { name, match };
  if (!text.trimEnd().endsWith("}")) return "the label list is not closed with }";
  const body = text.slice(brace + 1, text.trimEnd().length - 1);
  let i = 0;
  const skip = (): void => {
    while (i < body.length && /\s/.test(body[i])) i += 1;
  };
  while (true) {
    skip();
    if (i >= body.length) break;
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(body.slice(i));
    if (!m) return `expected a label name at "${body.slice(i, i + 20)}"`;
    const label = m[0];
    i += label.length;
    skip();
    if (body[i] !== "=") return `expected = after the label ${label}`;
    i += 1;
    skip();
    let value = "";
    if (body[i] === '"') {
      let j = i + 1;
      while (j < body.length && body[j] !== '"') j += body[j] === "\\" ? 2 : 1;
      if (j >= body.length) return `the value of ${label} has no closing quote`;
      try {
        value = JSON.parse(body.slice(i, j + 1)) as string;
      } catch {
        return `the value of ${label} is not a valid quoted string`;
      }
      i = j + 1;
    } else {
      const v = /^[^,}"\s]*/.exec(body.slice(i));
      value = v ? v[0] : "";
      i += value.length;
    }
    if (!LABEL_RE.test(label)) return `"${label}" is not a label name`;
    match[label] = value;
    skip();
    if (i >= body.length) break;
    if (body[i] !== ",") return `expected , or } after the value of ${label}`;
    i += 1;
  }
  return { name, match };
}

/** The chart's series from the view's URL parameters: `series`, else the older `metric`, else none. */
export function specsFromParams(params: URLSearchParams): { specs: SeriesSpec[]; errors: string[] } {
  const series = params.get("series");
  if (series !== null && series.trim() !== "") return parseSpecs(series);
  const metric = params.get("metric");
  if (metric) return parseSpecs(metric);
  return { specs: [], errors: [] };
}

export interface Labelled {
  labels: Record<string, string>;
}

function sameExcept(a: Record<string, string>, b: Record<string, string>, except: string): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  keys.delete(except);
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}

/** Does ``big`` carry every label of ``small`` with the same value, and more? */
function refines(big: Record<string, string>, small: Record<string, string>): boolean {
  const sk = Object.keys(small);
  if (Object.keys(big).length <= sk.length) return false;
  return sk.every((k) => big[k] === small[k]);
}

/**
 * The series a selector draws by default: every matched series except the
 * parts of a whole shown beside it. A series carrying the labels of another
 * plus more (cpu_percent{host,cpu="1"} beside cpu_percent{host}) is a part;
 * so is a sibling of one labelled "total" (cpu="1" beside cpu="total"),
 * unless the selector asks for that label. One line per host remains, as
 * with Grafana's default query across a fleet.
 */
export function defaultSeries<T extends Labelled>(list: readonly T[], match: Record<string, string>): T[] {
  return list.filter((s) => {
    for (const other of list) {
      if (other === s) continue;
      if (refines(s.labels, other.labels) && Object.keys(s.labels).some((k) => !(k in other.labels) && !(k in match))) return false;
      for (const [k, v] of Object.entries(other.labels)) {
        if (v === "total" && k in s.labels && s.labels[k] !== "total" && !(k in match) && sameExcept(s.labels, other.labels, k)) return false;
      }
    }
    return true;
  });
}

/**
 * Whether a series belongs in a target's scope (Grafana-like): the target
 * narrows only series that carry a `target` label; host series (cpu, memory,
 * load) carry none and stay. "" is every target.
 */
export function inTargetScope(labels: Record<string, string>, target: string): boolean {
  return target === "" || !("target" in labels) || labels.target === target;
}

/**
 * A short name per line: the metric, plus the labels that tell lines apart
 * (the ones not every line shares). A single line keeps its host.
 */
export function lineNames(lines: readonly { name: string; labels: Record<string, string> }[]): string[] {
  const common: Record<string, string> = {};
  if (lines.length > 1) {
    const first = lines[0].labels;
    for (const [k, v] of Object.entries(first)) if (lines.every((l) => l.labels[k] === v)) common[k] = v;
  }
  const metrics = new Set(lines.map((l) => l.name));
  return lines.map((l) => {
    const own: Record<string, string> = {};
    for (const [k, v] of Object.entries(l.labels)) if (!(k in common)) own[k] = v;
    const text = formatLabels(own);
    if (metrics.size === 1 && lines.length > 1 && text) return `${l.name} ${text}`;
    return text ? `${l.name} {${text}}` : l.name;
  });
}

/** Short unit text for an axis: "%", "ms", "bytes"...; null for a number without a unit. */
export function unitLabel(unit: string | null): string | null {
  switch (unit) {
    case "percent":
      return "%";
    case "milliseconds":
      return "ms";
    case "bytes":
      return "bytes";
    case "bytes_per_second":
      return "bytes/s";
    case "requests_per_second":
      return "req/s";
    case "ratio":
      return "ratio (%)";
    default:
      return null;
  }
}

/** One line of a multi-line chart. */
export interface ChartLine {
  label: string;
  /** The metric (names the axis of a metric without a unit). */
  name: string;
  unit: string | null;
}

export interface AxisPlan {
  /** uPlot scale key. */
  scale: string;
  unit: string | null;
  /** The axis title: the unit, or the metric for a number without one. */
  title: string;
  /** uPlot side: 3 left, 1 right. */
  side: 1 | 3;
}

/**
 * One y axis per unit, in the order the lines first use them: the first on
 * the left, the others on the right (a line's unit is its metric's unless
 * given). Metrics without a known unit get an
 * axis of their own each (load and operation counts do not share a scale).
 */
export function planAxes(lines: readonly { name: string; unit?: string | null }[]): { axes: AxisPlan[]; scaleOf: string[] } {
  const axes: AxisPlan[] = [];
  const scaleOf: string[] = [];
  for (const line of lines) {
    const unit = line.unit === undefined ? metricUnit(line.name) : line.unit;
    const scale = unit ? `u:${unit}` : `m:${line.name}`;
    if (!axes.some((a) => a.scale === scale)) {
      axes.push({ scale, unit, title: unitLabel(unit) ?? line.name, side: axes.length === 0 ? 3 : 1 });
    }
    scaleOf.push(scale);
  }
  return { axes, scaleOf };
}

/**
 * Several series on one time axis (x in seconds): the union of their
 * timestamps, each series undefined where it has no point (uPlot draws
 * across those, as across uPlot.join's alignment gaps).
 */
export function alignSeries(list: readonly { timestamps_ms: readonly number[]; avg: readonly number[] }[]): (number | undefined)[][] {
  if (list.length === 0) return [[]];
  if (list.length === 1) return [list[0].timestamps_ms.map((t) => t / 1000), [...list[0].avg]];
  const all = new Set<number>();
  for (const s of list) for (const t of s.timestamps_ms) all.add(t);
  const xs = [...all].sort((a, b) => a - b);
  const index = new Map<number, number>();
  xs.forEach((t, i) => index.set(t, i));
  const out: (number | undefined)[][] = [xs.map((t) => t / 1000)];
  for (const s of list) {
    const ys: (number | undefined)[] = new Array<number | undefined>(xs.length).fill(undefined);
    for (let i = 0; i < s.timestamps_ms.length; i += 1) {
      const at = index.get(s.timestamps_ms[i]);
      if (at !== undefined) ys[at] = s.avg[i];
    }
    out.push(ys);
  }
  return out;
}

/**
 * Line colours, each at least 3:1 against the chart background of its theme
 * (WCAG 1.4.11); lines after the first are also dashed, so they differ by
 * more than colour.
 */
export const LIGHT_COLORS = ["#2f6fdb", "#c2410c", "#2e7d32", "#8e24aa", "#00796b", "#ad1457"];
export const DARK_COLORS = ["#5794f2", "#ff9830", "#73bf69", "#c58ce6", "#4dd0e1", "#f2709c"];
const DASHES: number[][] = [[], [6, 3], [2, 3], [8, 3, 2, 3], [12, 4], [4, 4]];

export function lineStyle(index: number, dark: boolean): { color: string; dash: number[] } {
  const colors = dark ? DARK_COLORS : LIGHT_COLORS;
  // Past six lines the colours repeat with another dash, so no two lines look alike.
  return { color: colors[index % colors.length], dash: DASHES[(index + Math.floor(index / colors.length)) % DASHES.length] };
}
