import { describe, expect, it } from "vitest";
import { csvField, exportName, toCSV } from "./export";

describe("CSV export", () => {
  it("quotes fields with commas, quotes and line breaks", () => {
    expect(csvField("plain")).toBe("plain");
    expect(csvField('say "hi", now')).toBe('"say ""hi"", now"');
    expect(csvField("two\nlines")).toBe('"two\nlines"');
    expect(csvField(null)).toBe("");
    expect(csvField(3.5)).toBe("3.5");
  });

  it("keeps formula-looking text as text", () => {
    expect(csvField("=HYPERLINK(1)")).toBe("'=HYPERLINK(1)");
    expect(csvField(-4)).toBe("-4");
  });

  it("writes a header and one line per row", () => {
    const rows = [{ a: 1, b: "x" }, { a: 2, b: "y,z" }];
    const text = toCSV(rows, [
      { header: "A", value: (r) => r.a },
      { header: "B", value: (r) => r.b },
    ]);
    expect(text).toBe('A,B\r\n1,x\r\n2,"y,z"\r\n');
  });

  it("names files safely", () => {
    expect(exportName("alerts / all", "csv", new Date("2026-12-07T10:15:00Z"))).toBe(
      "secperf-alerts-all-2026-12-07T10-15-00.csv",
    );
  });
});
