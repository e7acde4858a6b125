// A hash router: "#/findings?severity=high" -> view "findings" + query params.

export const VIEWS = [
  { id: "overview", title: "Overview" },
  { id: "performance", title: "Performance" },
  { id: "alerts", title: "Alerts" },
  { id: "correlations", title: "Correlations" },
  { id: "findings", title: "Findings" },
  { id: "gate", title: "Gate & benchmarks" },
  { id: "advice", title: "Troubleshooting" },
] as const;

export type ViewId = (typeof VIEWS)[number]["id"];

export function parseHash(hash: string): { view: ViewId; params: URLSearchParams } {
  const text = hash.replace(/^#\/?/, "");
  const [path, query = ""] = text.split("?", 2);
  const known = VIEWS.find((v) => v.id === path);
  return { view: known ? known.id : "overview", params: new URLSearchParams(query) };
}

class Route {
  view = $state<ViewId>("overview");
  params = $state(new URLSearchParams());

  start(): void {
    const update = (): void => {
      const parsed = parseHash(window.location.hash);
      this.view = parsed.view;
      this.params = parsed.params;
    };
    window.addEventListener("hashchange", update);
    update();
  }

  /** Replace the query part of the current view's hash without adding history entries. */
  setParams(params: Record<string, string>): void {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v) search.set(k, v);
    const q = search.toString();
    history.replaceState(null, "", `#/${this.view}${q ? `?${q}` : ""}`);
    this.params = search;
  }
}

export const route = new Route();
