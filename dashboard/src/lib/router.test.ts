import { describe, expect, it } from "vitest";
import { hashFor, parseHash, sharedOf, withShared } from "./router.svelte";

describe("the router's links keep the scope", () => {
  const params = new URLSearchParams("severity=high&target=api&from=now-6h&to=now&host=h1");

  it("keeps the shared parameters in a fixed order and drops a view's own", () => {
    expect(sharedOf(params).toString()).toBe("target=api&host=h1&from=now-6h&to=now");
    expect(hashFor("fleet", params)).toBe("#/fleet?target=api&host=h1&from=now-6h&to=now");
    expect(hashFor("findings", params, { severity: "low", target: "ignored" })).toBe(
      "#/findings?target=api&host=h1&from=now-6h&to=now&severity=low",
    );
  });

  it("links to a view with some shared parameters changed or removed", () => {
    expect(hashFor("overview", withShared(params, { target: "web" }))).toBe(
      "#/overview?target=web&host=h1&from=now-6h&to=now",
    );
    expect(hashFor("performance", withShared(params, { target: "", host: "h2" }))).toBe(
      "#/performance?host=h2&from=now-6h&to=now",
    );
    // The original is left alone.
    expect(params.get("target")).toBe("api");
  });

  it("reads a hash, an unknown view being the overview", () => {
    const parsed = parseHash("#/fleet?target=a%20b&sort=findings");
    expect(parsed.view).toBe("fleet");
    expect(parsed.params.get("target")).toBe("a b");
    expect(parseHash("#/nowhere").view).toBe("overview");
  });
});
