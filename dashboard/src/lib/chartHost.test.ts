import { describe, expect, it } from "vitest";
import { resizedWidth } from "./chartHost";

describe("resizedWidth", () => {
  it("resizes a chart to a new host width", () => {
    expect(resizedWidth(480, 600)).toBe(480);
    expect(resizedWidth(600, undefined)).toBe(600);
  });
  it("leaves a chart that has the width already, or whose host is hidden", () => {
    expect(resizedWidth(600, 600)).toBeNull();
    expect(resizedWidth(0, 600)).toBeNull();
  });
});
