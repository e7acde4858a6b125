import { describe, expect, it } from "vitest";
import { storeWritesText } from "./storeWrites";

describe("storeWritesText", () => {
  it("says nothing while every write succeeded", () => {
    expect(storeWritesText(null)).toBeNull();
    expect(storeWritesText(undefined)).toBeNull();
    expect(
      storeWritesText({ failures: 0, lost_events: 0, lost_samples: 0, kept_events: 0 }),
    ).toBeNull();
  });

  it("counts refused writes, what waits and what was lost", () => {
    expect(
      storeWritesText({ failures: 3, lost_events: 1, lost_samples: 2500, kept_events: 2 }),
    ).toBe(
      "The store refused 3 writes after every retry (2 events waiting to be written, 1 event lost," +
        " 2,500 samples lost): this page may miss data. See the server's log.",
    );
    expect(storeWritesText({ failures: 1, lost_events: 0, lost_samples: 0, kept_events: 0 })).toBe(
      "The store refused 1 write after every retry: this page may miss data. See the server's log.",
    );
  });
});
