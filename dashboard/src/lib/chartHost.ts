// What every uPlot chart of the dashboard follows on its page: the colour
// scheme (a chart draws with the theme's colours, so a change redraws it) and
// the width of the element holding it (a chart has a fixed pixel width).

/** A chart's view of its host element: told the scheme and the width as they change. */
export interface ChartHostWatch {
  /** The scheme now and after every change (true: dark). */
  onScheme: (dark: boolean) => void;
  /** The host's width now and after every resize (0 while hidden). */
  onWidth: (width: number) => void;
}

/** Follow ``host``'s colour scheme and width; returns the function that stops following. */
export function followChartHost(host: HTMLElement, watch: ChartHostWatch): () => void {
  const scheme = matchMedia("(prefers-color-scheme: dark)");
  const onScheme = (): void => watch.onScheme(scheme.matches);
  scheme.addEventListener("change", onScheme);
  const observer = new ResizeObserver(() => watch.onWidth(host.clientWidth));
  observer.observe(host);
  onScheme();
  watch.onWidth(host.clientWidth);
  return () => {
    scheme.removeEventListener("change", onScheme);
    observer.disconnect();
  };
}

/** The width a chart should take in a host ``width`` wide: null when it already has it or
 * the host is hidden (a hidden host's 0 would draw nothing). */
export function resizedWidth(width: number, chartWidth: number | undefined): number | null {
  return width > 0 && width !== chartWidth ? width : null;
}
