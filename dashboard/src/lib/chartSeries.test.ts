import { describe, expect, it } from "vitest";
import {
  DARK_COLORS,
  LIGHT_COLORS,
  MAX_SPECS,
  alignSeries,
  defaultSeries,
  formatSpecs,
  inTargetScope,
  lineNames,
  lineStyle,
  parseSpecs,
  planAxes,
  specsFromParams,
} from "./chartSeries";
import { contrastRatio, parseColor } from "./contrast";

describe("the series parameter", () => {
  it("round-trips names and label matchers", () => {
    const text = 'response_time_ms;cpu_percent{cpu="1",host="web-1"};memory_percent';
    const { specs, errors } = parseSpecs(text);
    expect(errors).toEqual([]);
    expect(specs).toEqual([
      { name: "response_time_ms", match: {} },
      { name: "cpu_percent", match: { cpu: "1", host: "web-1" } },
      { name: "memory_percent", match: {} },
    ]);
    expect(formatSpecs(specs)).toBe(text);
  });
  it("takes unquoted values, spaces, and quoted values holding ; , and }", () => {
    const { specs, errors } = parseSpecs(' cpu_percent{ host = web-1 , cpu=total } ; x{path="a;b,c}"}');
    expect(errors).toEqual([]);
    expect(specs[0].match).toEqual({ host: "web-1", cpu: "total" });
    expect(specs[1].match).toEqual({ path: "a;b,c}" });
  });
  it("reports bad selectors by position and keeps the good ones", () => {
    const { specs, errors } = parseSpecs("cpu_percent;9bad;mem{host};load_1m{host=\"a\"");
    expect(specs.map((s) => s.name)).toEqual(["cpu_percent"]);
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatch(/^series 2 \(9bad\): "9bad" is not a metric name/);
    expect(errors[1]).toMatch(/^series 3 .*expected = after the label host/);
    expect(errors[2]).toMatch(/^series 4 .*not closed/);
  });
  it("drops duplicates and stops at the most a chart shows", () => {
    const many = Array.from({ length: MAX_SPECS + 2 }, (_, i) => `m${i}`).join(";");
    const { specs, errors } = parseSpecs(`m0;${many}`);
    expect(specs).toHaveLength(MAX_SPECS);
    expect(errors).toHaveLength(2);
  });
  it("falls back to the older metric parameter", () => {
    expect(specsFromParams(new URLSearchParams("metric=cpu_percent")).specs).toEqual([{ name: "cpu_percent", match: {} }]);
    expect(specsFromParams(new URLSearchParams("metric=cpu_percent&series=load_1m")).specs[0].name).toBe("load_1m");
    expect(specsFromParams(new URLSearchParams("")).specs).toEqual([]);
  });
});

describe("which stored series a selector draws", () => {
  const s = (labels: Record<string, string>) => ({ labels });
  it("draws the host total, not one core", () => {
    const list = [s({ host: "a", cpu: "0" }), s({ host: "a", cpu: "1" }), s({ host: "a" })];
    expect(defaultSeries(list, {})).toEqual([s({ host: "a" })]);
  });
  it("prefers a series labelled total over its siblings", () => {
    const list = [s({ host: "a", cpu: "1" }), s({ host: "a", cpu: "total" }), s({ host: "a", cpu: "0" })];
    expect(defaultSeries(list, {})).toEqual([s({ host: "a", cpu: "total" })]);
  });
  it("draws one line per host", () => {
    const list = [s({ host: "a" }), s({ host: "a", cpu: "1" }), s({ host: "b" }), s({ host: "b", cpu: "1" })];
    expect(defaultSeries(list, {})).toEqual([s({ host: "a" }), s({ host: "b" })]);
  });
  it("keeps what the selector asks for and series that are no one's part", () => {
    expect(defaultSeries([s({ host: "a", cpu: "1" })], { cpu: "1" })).toHaveLength(1);
    const procs = [s({ host: "a", pid: "1" }), s({ host: "a", pid: "2" })];
    expect(defaultSeries(procs, {})).toEqual(procs);
  });
});

describe("line names, axes and alignment", () => {
  it("names lines by what tells them apart", () => {
    expect(lineNames([{ name: "cpu_percent", labels: { host: "a" } }])).toEqual(["cpu_percent {host=a}"]);
    expect(
      lineNames([
        { name: "cpu_percent", labels: { host: "a" } },
        { name: "cpu_percent", labels: { host: "b" } },
      ]),
    ).toEqual(["cpu_percent host=a", "cpu_percent host=b"]);
    expect(
      lineNames([
        { name: "response_time_ms", labels: { host: "a" } },
        { name: "cpu_percent", labels: { host: "a" } },
      ]),
    ).toEqual(["response_time_ms", "cpu_percent"]);
  });
  it("gives each unit an axis, the first on the left", () => {
    const { axes, scaleOf } = planAxes([{ name: "response_time_ms" }, { name: "cpu_percent" }, { name: "memory_percent" }, { name: "load_1m" }]);
    expect(axes.map((a) => [a.title, a.side])).toEqual([
      ["ms", 3],
      ["%", 1],
      ["load_1m", 1],
    ]);
    expect(scaleOf).toEqual(["u:milliseconds", "u:percent", "u:percent", "m:load_1m"]);
  });
  it("lines series up on the union of their timestamps", () => {
    const data = alignSeries([
      { timestamps_ms: [1000, 3000], avg: [1, 3] },
      { timestamps_ms: [2000, 3000], avg: [20, 30] },
    ]);
    expect(data).toEqual([
      [1, 2, 3],
      [1, undefined, 3],
      [undefined, 20, 30],
    ]);
    expect(alignSeries([])).toEqual([[]]);
  });
  it("colours lines at 3:1 or more against the chart background in both themes", () => {
    const light = parseColor("#ffffff")!;
    const dark = parseColor("#181b1f")!;
    for (const c of LIGHT_COLORS) expect(contrastRatio(parseColor(c)!, light)).toBeGreaterThanOrEqual(3);
    for (const c of DARK_COLORS) expect(contrastRatio(parseColor(c)!, dark)).toBeGreaterThanOrEqual(3);
    const seen = new Set(Array.from({ length: 12 }, (_, i) => JSON.stringify(lineStyle(i, false))));
    expect(seen.size).toBe(12);
  });
});

describe("a target's scope for series", () => {
  it("narrows series with a target label and keeps host series", () => {
    expect(inTargetScope({ host: "web-1" }, "webapp")).toBe(true);
    expect(inTargetScope({ target: "webapp" }, "webapp")).toBe(true);
    expect(inTargetScope({ target: "api", host: "web-1" }, "webapp")).toBe(false);
    expect(inTargetScope({ target: "api" }, "")).toBe(true);
  });
});
