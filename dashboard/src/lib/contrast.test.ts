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
