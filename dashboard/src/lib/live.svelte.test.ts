import { describe, expect, it } from "vitest";
import { isSilenced, matcherHolds, noticeText, retryDelay, RETRY_CAP_MS, TOPICS } from "./live.svelte";

describe("retryDelay", () => {
  it("doubles from 1 s up to the cap", () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelay(n, RETRY_CAP_MS))).toEqual([1000, 2000, 4000, 8000, 10000, 10000]);
    expect(retryDelay(0, RETRY_CAP_MS)).toBe(1000);
  });
});

describe("TOPICS", () => {
  it("covers the events of what people do", () => {
    const patterns = TOPICS.split(",");
    const covered = (topic: string): boolean =>
      patterns.some((p) => (p.endsWith(".>") ? topic.startsWith(p.slice(0, -1)) : p === topic));
    for (const topic of ["security.finding.triaged", "alerts.acknowledged", "alerts.silence.added", "alerts.silence.expired"]) {
      expect(covered(topic), topic).toBe(true);
    }
  });
});

describe("noticeText", () => {
  it("says who acknowledged which alert", () => {
    expect(noticeText("AlertAcknowledged", { alert: { rule: "HighCpu" }, author: "dana", note: "on it" })).toBe(
      "alert HighCpu acknowledged by dana: on it",
    );
  });

  it("says how a finding was triaged and by whom", () => {
    expect(noticeText("FindingTriaged", { fingerprint: "0123456789abcdef", state: "false_positive", author: "lee" })).toBe(
      "finding 0123456789ab… triaged as false positive by lee",
    );
  });

  it("says who added a silence and for what", () => {
    const matchers = [{ name: "alertname", value: "HighCpu" }, { name: "host", value: "web-.*", op: "=~" }];
    const text = noticeText("SilenceAdded", { matchers, author: "kim", ends_ms: 0 });
    expect(text).toContain("silence added by kim for alertname=HighCpu, host=~web-.*");
  });

  it("has nothing to say about other events", () => {
    expect(noticeText("ScanStarted", {})).toBeNull();
  });
});

describe("silences", () => {
  const labels = { alertname: "HighCpu", host: "web-1" };

  it("match labels as Alertmanager does", () => {
    expect(matcherHolds({ name: "alertname", value: "HighCpu" }, labels)).toBe(true);
    expect(matcherHolds({ name: "alertname", value: "High", op: "=~" }, labels)).toBe(false);
    expect(matcherHolds({ name: "alertname", value: "High.*", op: "=~" }, labels)).toBe(true);
    expect(matcherHolds({ name: "host", value: "web-2", op: "!=" }, labels)).toBe(true);
    expect(matcherHolds({ name: "team", value: "", op: "=" }, labels)).toBe(true);
    expect(matcherHolds({ name: "host", value: "(", op: "=~" }, labels)).toBe(false);
  });

  it("cover an alert only while in force and when every matcher holds", () => {
    const s = { id: 1, matchers: [{ name: "alertname", value: "HighCpu" }, { name: "host", value: "web-1" }], starts_ms: 100, ends_ms: 200 };
    expect(isSilenced([s], labels, 150)).toBe(true);
    expect(isSilenced([s], labels, 200)).toBe(false);
    expect(isSilenced([s], { ...labels, host: "web-2" }, 150)).toBe(false);
  });
});
