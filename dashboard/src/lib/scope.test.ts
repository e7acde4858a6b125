import { describe, expect, it } from "vitest";
import { parseAbsolute, parseRelative, relativeText, resolveRange } from "./scope.svelte";

describe("time range texts", () => {
  it("reads relative and absolute ends", () => {
    expect(parseRelative("now")).toBe(0);
    expect(parseRelative("now-15m")).toBe(900_000);
    expect(parseRelative("now-2d")).toBe(172_800_000);
    expect(parseRelative("yesterday")).toBeNull();
    expect(parseAbsolute("1733500000000")).toBe(1733500000000);
    expect(parseAbsolute("12")).toBeNull();
  });

  it("writes a span in its largest whole unit", () => {
    expect(relativeText(3_600_000)).toBe("now-1h");
    expect(relativeText(7_200_000)).toBe("now-2h");
    expect(relativeText(90 * 60_000)).toBe("now-90m");
    expect(relativeText(604_800_000)).toBe("now-1w");
  });

  it("resolves against now, live only when the range ends now", () => {
    const now = 1_800_000_000_000;
    expect(resolveRange("now-1h", "now", now)).toEqual({ start_ms: now - 3_600_000, end_ms: now, live: true });
    expect(resolveRange("1700000000000", "1700000600000", now)).toEqual({
      start_ms: 1700000000000,
      end_ms: 1700000600000,
      live: false,
    });
  });

  it("falls back to the last hour on nonsense or a reversed range", () => {
    const now = 1_800_000_000_000;
    const fallback = { start_ms: now - 3_600_000, end_ms: now, live: true };
    expect(resolveRange("garbage", "now", now)).toEqual(fallback);
    expect(resolveRange("1700000600000", "1700000000000", now)).toEqual(fallback);
    expect(resolveRange(null, null, now)).toEqual(fallback);
  });
});
