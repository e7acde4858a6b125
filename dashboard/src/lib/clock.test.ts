import { describe, expect, it } from "vitest";
import { CLOCK_SAMPLES, median, offsetFrom, parseServerTime, ServerClock } from "./clock";
import { formatAgo } from "./format";

describe("offsetFrom", () => {
  it("takes the middle of the round trip", () => {
    // Sent at 1000, answered at 1200 (browser); the server stamped 61100.
    expect(offsetFrom(61_100, 1000, 1200)).toEqual({ offsetMs: 60_000, rttMs: 200 });
  });

  it("refuses a round trip the browser's clock jumped through", () => {
    expect(offsetFrom(5000, 2000, 1000)).toBeNull();
    expect(offsetFrom(Number.NaN, 1000, 1200)).toBeNull();
  });
});

describe("median", () => {
  it("is the middle value, or the mean of the two middle ones", () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBe(0);
  });
});

describe("parseServerTime", () => {
  it("reads epoch ms and refuses anything else", () => {
    expect(parseServerTime("1733500000000")).toBe(1_733_500_000_000);
    expect(parseServerTime(null)).toBeNull();
    expect(parseServerTime("soon")).toBeNull();
    expect(parseServerTime("-5")).toBeNull();
  });
});

describe("ServerClock", () => {
  it("is the browser's clock until the server said its time", () => {
    const clock = new ServerClock();
    expect(clock.known).toBe(false);
    expect(clock.now(1234)).toBe(1234);
  });

  it("corrects a browser clock minutes behind the server", () => {
    const clock = new ServerClock();
    const behind = 5 * 60_000;
    clock.observe(10_000 + behind + 50, 10_000, 10_100);
    expect(clock.offsetMs).toBe(behind);
    expect(clock.now(20_000)).toBe(20_000 + behind);
  });

  it("is not moved by one slow answer (median of recent ones)", () => {
    const clock = new ServerClock();
    for (let i = 0; i < 4; i += 1) clock.observe(1000 * i + 500 + 50, 1000 * i, 1000 * i + 100);
    expect(clock.offsetMs).toBe(500);
    // One answer whose round trip was long and lopsided: a 3 s error in its estimate.
    clock.observe(20_000 + 500 + 3000, 20_000, 20_000 + 100);
    expect(clock.offsetMs).toBe(500);
  });

  it("keeps only the last few estimates, so a changed clock is followed", () => {
    const clock = new ServerClock();
    for (let i = 0; i < CLOCK_SAMPLES; i += 1) clock.observe(i * 1000 + 100, i * 1000, i * 1000);
    expect(clock.offsetMs).toBe(100);
    for (let i = 0; i < CLOCK_SAMPLES; i += 1) clock.observe(i * 1000 + 9000, i * 1000, i * 1000);
    expect(clock.offsetMs).toBe(9000);
  });

  it("ignores a very long round trip once a better estimate exists", () => {
    const clock = new ServerClock();
    clock.observe(1100, 1000, 1000);
    clock.observe(100_000, 0, 60_000);
    expect(clock.offsetMs).toBe(100);
  });

  it("tells listeners when the offset changes", () => {
    const clock = new ServerClock();
    const seen: number[] = [];
    const stop = clock.onChange((o) => seen.push(o));
    clock.observe(2000, 1000, 1000);
    clock.observe(2000, 1000, 1000);
    stop();
    clock.observe(9000, 1000, 1000);
    expect(seen).toEqual([1000]);
  });
});

describe("formatAgo", () => {
  it("never says an instant is in the future: a fresh one is just now", () => {
    expect(formatAgo(10_500, 10_000)).toBe("just now");
    expect(formatAgo(10_000, 10_000)).toBe("just now");
    expect(formatAgo(10_000, 15_000)).toBe("5 s ago");
  });
});
