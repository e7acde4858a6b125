import { describe, expect, it } from "vitest";
import css from "../app.css?raw";
import { contrastRatio, over, parseColor, type Rgba } from "./contrast";

// The theme's custom properties, light (":root") and dark (the media query's ":root").
function themes(): { light: Record<string, string>; dark: Record<string, string> } {
  const vars = (block: string): Record<string, string> =>
    Object.fromEntries([...block.matchAll(/(--[\w-]+)\s*:\s*([^;]+);/g)].map((m) => [m[1], m[2].trim()]));
  const light = /^:root\s*\{([^}]*)\}/m.exec(css);
  const dark = /prefers-color-scheme:\s*dark\)\s*\{\s*:root\s*\{([^}]*)\}/m.exec(css);
  if (!light || !dark) throw new Error("app.css: no light or dark :root block");
  return { light: vars(light[1]), dark: vars(dark[1]) };
}

function color(theme: Record<string, string>, name: string): Rgba {
  const c = parseColor(theme[name] ?? "");
  if (!c) throw new Error(`app.css: ${name} is not a colour: ${theme[name]}`);
  return c;
}

describe("contrast", () => {
  it("parses hex and rgba colours", () => {
    expect(parseColor("#fff")).toEqual({ r: 255, g: 255, b: 255, a: 1 });
    expect(parseColor("rgba(10, 20, 30, 0.5)")).toEqual({ r: 10, g: 20, b: 30, a: 0.5 });
    expect(parseColor("red")).toBeNull();
  });
  it("gives 21 for black on white and 1 for a colour on itself", () => {
    expect(contrastRatio(parseColor("#000")!, parseColor("#fff")!)).toBeCloseTo(21, 5);
    expect(contrastRatio(parseColor("#777")!, parseColor("#777")!)).toBeCloseTo(1, 5);
  });
});

// Every colour token of app.css has one role, and the role says what it must meet.
// app.css is the one source of truth: these lists only name the tokens.
const SURFACES = ["--bg", "--bg-1", "--bg-2"];
/** Text read on any surface: 4.5:1 (WCAG 1.4.3). */
const TEXT = [
  "--fg",
  "--fg-muted",
  "--accent",
  "--scan-text",
  "--throttle-text",
  "--ok",
  "--bad",
  "--warn",
  "--sev-critical",
  "--sev-high",
  "--sev-medium",
  "--sev-low",
  "--sev-info",
];
/** Text on a filled badge or button: [text, fill], 4.5:1. */
const ON_FILL: [string, string][] = [
  ["--sev-critical-fg", "--sev-critical"],
  ["--sev-high-fg", "--sev-high"],
  ["--sev-medium-fg", "--sev-medium"],
  ["--sev-low-fg", "--sev-low"],
  ["--sev-info-fg", "--sev-info"],
  ["--accent-fg", "--accent"],
  ["--bad-fg", "--bad"],
];
/** Focus ring, control borders, chart marks that carry meaning: 3:1 on any surface (WCAG 1.4.11). */
const UI = ["--focus", "--control-border", "--throttle-hatch"];
/** Translucent fills and rules that carry no information alone (checked where text sits on them). */
const DECORATION = ["--grid", "--border", "--band", "--scan", "--scan-edge", "--throttle"];

describe("every colour token meets WCAG 2.1 AA in both themes", () => {
  const { light, dark } = themes();
  it("both themes define the same tokens, and each token has a role above", () => {
    expect(Object.keys(dark).sort()).toEqual(Object.keys(light).sort());
    const roles = [...SURFACES, ...TEXT, ...ON_FILL.map(([fg]) => fg), ...UI, ...DECORATION];
    expect(Object.keys(light).filter((t) => !roles.includes(t))).toEqual([]);
    expect(roles.filter((t) => !(t in light))).toEqual([]);
  });
  it("app.css names no colour outside the theme blocks (one source of truth)", () => {
    const rules = css.replace(/^:root\s*\{[^}]*\}/m, "").replace(/prefers-color-scheme:\s*dark\)\s*\{\s*:root\s*\{[^}]*\}/m, "");
    expect(rules.match(/#[0-9a-f]{3,8}\b|rgba?\(|hsla?\(|\b(white|black)\b(?!-)/gi) ?? []).toEqual([]);
  });
  for (const [name, theme] of Object.entries({ light, dark })) {
    // The pairs under ``min`` as "token on where: ratio", so a failure names each one.
    const failures = (pairs: [string, string | Rgba, string][], min: number): string[] =>
      pairs
        .map(([a, b, where]) => {
          const r = contrastRatio(color(theme, a), typeof b === "string" ? color(theme, b) : b);
          return { text: `${a} on ${where}: ${r.toFixed(2)}`, r };
        })
        .filter(({ r }) => r < min)
        .map(({ text }) => text);
    it(`${name}: text reads at 4.5:1 on every surface`, () => {
      const pairs = TEXT.flatMap((t) => SURFACES.map((s): [string, string, string] => [t, s, s]));
      expect(failures(pairs, 4.5)).toEqual([]);
    });
    it(`${name}: text on a badge or filled button reads at 4.5:1 on its fill`, () => {
      expect(failures(ON_FILL.map(([fg, fill]): [string, string, string] => [fg, fill, fill]), 4.5)).toEqual([]);
    });
    it(`${name}: focus ring, control borders and chart marks stand out 3:1 on every surface`, () => {
      const pairs = UI.flatMap((t) => SURFACES.map((s): [string, string, string] => [t, s, s]));
      expect(failures(pairs, 3)).toEqual([]);
    });
    it(`${name}: the error banner's text reads at 4.5:1 on its tinted fill`, () => {
      // .banner: color-mix(in srgb, var(--bad) 15%, var(--bg-1)) under --fg and the dismiss link.
      const tint = over({ ...color(theme, "--bad"), a: 0.15 }, color(theme, "--bg-1"));
      expect(failures([["--fg", tint, "banner"], ["--accent", tint, "banner"]], 4.5)).toEqual([]);
    });
  }
});

describe("throttled stretches meet WCAG AA in both themes", () => {
  for (const [name, theme] of Object.entries(themes())) {
    it(`${name}: the throttle text reads at 4.5:1 on panels and inside a scan window`, () => {
      const panel = color(theme, "--bg-1");
      const inScan = over(color(theme, "--scan"), panel);
      expect(contrastRatio(color(theme, "--throttle-text"), panel)).toBeGreaterThanOrEqual(4.5);
      expect(contrastRatio(color(theme, "--scan-text"), panel)).toBeGreaterThanOrEqual(4.5);
      expect(contrastRatio(color(theme, "--throttle-text"), inScan)).toBeGreaterThanOrEqual(4.5);
    });
    it(`${name}: the hatching stands out 3:1 from the window around it and the plain chart`, () => {
      const panel = color(theme, "--bg-1");
      const inScan = over(color(theme, "--scan"), panel);
      const band = over(color(theme, "--throttle"), inScan);
      const hatch = color(theme, "--throttle-hatch");
      expect(contrastRatio(hatch, band)).toBeGreaterThanOrEqual(3);
      expect(contrastRatio(hatch, inScan)).toBeGreaterThanOrEqual(3);
      expect(contrastRatio(hatch, panel)).toBeGreaterThanOrEqual(3);
    });
    it(`${name}: the focus ring stands out 3:1 from the page and panels`, () => {
      expect(contrastRatio(color(theme, "--focus"), color(theme, "--bg-1"))).toBeGreaterThanOrEqual(3);
      expect(contrastRatio(color(theme, "--focus"), color(theme, "--bg"))).toBeGreaterThanOrEqual(3);
      expect(contrastRatio(color(theme, "--focus"), color(theme, "--bg-2"))).toBeGreaterThanOrEqual(3);
    });
  }
});
