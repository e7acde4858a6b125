import { describe, expect, it } from "vitest";
import {
  checkCustomRange,
  describeRange,
  fromLocalInput,
  parseAbsolute,
  parseRelative,
  MAX_EPOCH_MS,
  MAX_SPAN_MS,
  relativeText,
  resolveRange,
  spanWords,
  toLocalInput,
} from "./scope.svelte";

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

describe("the range in words", () => {
  it("says a span in its largest whole unit", () => {
    expect(spanWords(900_000)).toBe("15 min");
    expect(spanWords(3_600_000)).toBe("1 h");
    expect(spanWords(90 * 60_000)).toBe("90 min");
    expect(spanWords(7 * 86_400_000)).toBe("7 d");
    expect(spanWords(30_000)).toBe("30 s");
  });

  it("says a live range as the last span and a fixed one by its ends", () => {
    const now = new Date(2026, 11, 7, 12, 0).getTime();
    expect(describeRange({ start_ms: now - 3_600_000, end_ms: now }, true, now)).toBe("last 1 h");
    const start = new Date(2026, 11, 7, 10, 0).getTime();
    const end = new Date(2026, 11, 7, 11, 0).getTime();
    expect(describeRange({ start_ms: start, end_ms: end }, false, now)).toBe("7 Dec 10:00 – 11:00");
    const overnight = new Date(2026, 11, 6, 22, 30).getTime();
    expect(describeRange({ start_ms: overnight, end_ms: end }, false, now)).toBe("6 Dec 22:30 – 7 Dec 11:00");
    const lastYear = new Date(2025, 0, 2, 8, 5).getTime();
    expect(describeRange({ start_ms: lastYear, end_ms: lastYear + 60_000 }, false, now)).toBe("2 Jan 2025 08:05 – 08:06");
  });
});

describe("a custom range", () => {
  it("round-trips datetime-local values in local time", () => {
    const ms = new Date(2026, 11, 7, 9, 5).getTime();
    expect(toLocalInput(ms)).toBe("2026-12-07T09:05");
    expect(fromLocalInput("2026-12-07T09:05")).toBe(ms);
    expect(fromLocalInput("2026-12-07T09:05:30")).toBe(ms + 30_000);
    expect(fromLocalInput("")).toBeNull();
    expect(fromLocalInput("2026-02-31T10:00")).toBeNull();
    expect(fromLocalInput("tomorrow")).toBeNull();
  });

  it("takes a range whose end is after its start", () => {
    expect(checkCustomRange("2026-12-07T10:00", "2026-12-07T11:00")).toEqual({
      start_ms: new Date(2026, 11, 7, 10, 0).getTime(),
      end_ms: new Date(2026, 11, 7, 11, 0).getTime(),
    });
  });

  it("says what is wrong with a reversed, empty or malformed range", () => {
    expect(checkCustomRange("2026-12-07T11:00", "2026-12-07T10:00")).toEqual({
      error: "the end (to) must be after the start (from)",
    });
    expect(checkCustomRange("2026-12-07T10:00", "2026-12-07T10:00")).toEqual({
      error: "the end (to) must be after the start (from)",
    });
    expect(checkCustomRange("", "")).toEqual({ error: "choose a start and an end" });
    expect(checkCustomRange("", "2026-12-07T10:00")).toEqual({ error: "choose a start (from)" });
    expect(checkCustomRange("2026-12-07T10:00", " ")).toEqual({ error: "choose an end (to)" });
    expect(checkCustomRange("2026-13-07T10:00", "2026-12-07T10:00")).toEqual({
      error: 'the start (from) "2026-13-07T10:00" is not a date and time',
    });
  });
});

describe("out-of-range time ranges", () => {
  const now = Date.UTC(2026, 11, 7, 10, 0);
  const fallback = { start_ms: now - 3_600_000, end_ms: now, live: true };

  it("falls back to the default for a relative range longer than ten years", () => {
    expect(parseRelative("now-999999w")).toBeNull();
    expect(parseRelative("now-999999d")).toBeNull();
    expect(resolveRange("now-999999w", "now", now)).toEqual(fallback);
    expect(resolveRange("now-999999d", "now", now)).toEqual(fallback);
    expect(resolveRange("now-521w", "now", now)).toEqual({ start_ms: now - 521 * 604_800_000, end_ms: now, live: true });
  });

  it("falls back to the default for an instant a date cannot hold", () => {
    expect(parseAbsolute(String(MAX_EPOCH_MS + 1))).toBeNull();
    expect(parseAbsolute(String(MAX_EPOCH_MS))).toBe(MAX_EPOCH_MS);
    expect(resolveRange("1000000000000", "8640000000000001", now)).toEqual(fallback);
    expect(resolveRange("1000000000000", "9999999999999999", now)).toEqual(fallback);
  });

  it("never starts before 1970", () => {
    const in1975 = Date.UTC(1975, 0, 1);
    expect(resolveRange("now-520w", "now", in1975)).toEqual({ start_ms: in1975 - 3_600_000, end_ms: in1975, live: true });
    for (const text of ["now-999999w", "now-99999d", "1000000000000"]) {
      const w = resolveRange(text, "8640000000000001", now);
      expect(w.start_ms).toBeGreaterThanOrEqual(0);
      expect(w.end_ms).toBeLessThanOrEqual(MAX_EPOCH_MS);
    }
  });

  it("writes any span as a relative text it can read back", () => {
    for (const span of [MAX_SPAN_MS, 12 * 86_400_000 + 1, 40 * 86_400_000 + 500, 3_600_000 + 1]) {
      const back = parseRelative(relativeText(span));
      expect(back).not.toBeNull();
      expect(Math.abs((back ?? 0) - span)).toBeLessThanOrEqual(span / 1000 + 1000);
    }
  });
});
