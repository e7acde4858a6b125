// A hash router: "#/findings?severity=high&target=api" -> view "findings" +
// query params. The scope and time range (target, host, from, to) belong to
// every view: moving between views keeps them, and a view's own parameters
// never drop them.

export const VIEWS = [
  { id: "overview", title: "Overview" },
  { id: "fleet", title: "Fleet" },
  { id: "performance", title: "Performance" },
  { id: "alerts", title: "Alerts" },
  { id: "correlations", title: "Correlations" },
  { id: "findings", title: "Findings" },
  { id: "gate", title: "Gate & benchmarks" },
  { id: "advice", title: "Troubleshooting" },
] as const;

export type ViewId = (typeof VIEWS)[number]["id"];

/** The query parameters every view shares (see scope.svelte.ts). */
export const SHARED_PARAMS = ["target", "host", "from", "to"] as const;

export function parseHash(hash: string): { view: ViewId; params: URLSearchParams } {
  const text = hash.replace(/^#\/?/, "");
  const [path, query = ""] = text.split("?", 2);
  const known = VIEWS.find((v) => v.id === path);
  return { view: known ? known.id : "overview", params: new URLSearchParams(query) };
}

/** The shared parameters of a query, in a fixed order. */
export function sharedOf(params: URLSearchParams): URLSearchParams {
  const out = new URLSearchParams();
  for (const key of SHARED_PARAMS) {
    const value = params.get(key);
    if (value) out.set(key, value);
  }
  return out;
}

/** The hash for a view with the shared parameters kept and the view's own ones added. */
export function hashFor(view: ViewId, shared: URLSearchParams, own: Record<string, string> = {}): string {
  const search = sharedOf(shared);
  for (const [k, v] of Object.entries(own)) if (v && !(SHARED_PARAMS as readonly string[]).includes(k)) search.set(k, v);
  const q = search.toString();
  return `#/${view}${q ? `?${q}` : ""}`;
}

export type SharedKey = (typeof SHARED_PARAMS)[number];
export type SharedChange = Partial<Record<SharedKey, string>>;

/** The query with some shared parameters set (an empty value removes one). */
export function withShared(params: URLSearchParams, shared: SharedChange): URLSearchParams {
  const next = new URLSearchParams(params);
  for (const [k, v] of Object.entries(shared)) {
    if (v) next.set(k, v);
    else next.delete(k);
  }
  return next;
}

/** The route the page was opened on (overview outside a browser, e.g. in unit tests). */
function initial(): { view: ViewId; params: URLSearchParams } {
  return typeof window === "undefined" ? parseHash("") : parseHash(window.location.hash);
}

class Route {
  // Read the URL at once: a deep link must not mount the overview (and its reads) first.
  view = $state<ViewId>(initial().view);
  params = $state(initial().params);

  start(): void {
    const update = (): void => {
      const parsed = parseHash(window.location.hash);
      this.view = parsed.view;
      this.params = parsed.params;
    };
    window.addEventListener("hashchange", update);
    update();
  }

  /** The link to another view that keeps the shared scope and time range. */
  href(view: ViewId, own: Record<string, string> = {}): string {
    return hashFor(view, this.params, own);
  }

  /**
   * The link to another view with some shared parameters changed (empty
   * string removes one), e.g. the overview of one target from the fleet.
   */
  hrefScoped(view: ViewId, shared: SharedChange, own: Record<string, string> = {}): string {
    return hashFor(view, withShared(this.params, shared), own);
  }

  /**
   * Replace the current view's own query parameters (the shared ones stay)
   * without adding a history entry.
   */
  setParams(params: Record<string, string>): void {
    this.#replace(hashFor(this.view, this.params, params));
  }

  /**
   * Set shared parameters (empty string removes one), keeping the view's own.
   * Adds a history entry so Back returns to the previous scope or range.
   */
  setShared(shared: SharedChange): void {
    const next = withShared(this.params, shared);
    const own: Record<string, string> = {};
    for (const [k, v] of next) if (!(SHARED_PARAMS as readonly string[]).includes(k)) own[k] = v;
    const hash = hashFor(this.view, next, own);
    history.pushState(null, "", hash);
    this.params = parseHash(hash).params;
  }

  #replace(hash: string): void {
    history.replaceState(null, "", hash);
    this.params = parseHash(hash).params;
  }
}

export const route = new Route();
