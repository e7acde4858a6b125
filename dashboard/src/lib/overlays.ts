// uPlot plugin drawing security overlays on a time chart: scan windows as
// shaded regions behind the series, the stretches in which the impact budget
// throttled a scan as hatched bands inside its window, new findings as
// markers along the bottom.

import type uPlot from "uplot";
import type { ThrottleBand } from "./pacing";
import type { FindingMark, ScanWindow } from "./types";

export interface OverlayData {
  scans: ScanWindow[];
  findings: FindingMark[];
  /** Throttled stretches, already clipped to their scans' windows. */
  bands: ThrottleBand[];
  now: number;
}

export interface OverlayColors {
  scan: string;
  scanEdge: string;
  throttle: string;
  throttleHatch: string;
  severity: Record<string, string>;
}

/** What the last draw put on the canvas; the page exposes it for tests and the legend. */
export interface OverlayDrawn {
  scans: number;
  findings: number;
  throttled: number;
}

/** Pixel span of [start, end] ms on the x scale, at least ``min`` px wide. */
function span(u: uPlot, startMs: number, endMs: number, min: number): [number, number] {
  let x0 = u.valToPos(startMs / 1000, "x", true);
  let x1 = u.valToPos(endMs / 1000, "x", true);
  if (x1 - x0 < min) {
    x0 -= min / 2;
    x1 = x0 + min;
  }
  return [x0, x1];
}

/** Diagonal hatching: the throttled bands differ from the window by pattern, not colour alone. */
function hatch(ctx: CanvasRenderingContext2D, fill: string, stroke: string): CanvasPattern | string {
  const size = Math.round(8 * devicePixelRatio);
  const tile = document.createElement("canvas");
  tile.width = size;
  tile.height = size;
  const t = tile.getContext("2d");
  if (!t) return fill;
  t.fillStyle = fill;
  t.fillRect(0, 0, size, size);
  t.strokeStyle = stroke;
  t.lineWidth = Math.max(1.5, 1.5 * devicePixelRatio);
  t.beginPath();
  // One stroke corner to corner plus the two corner stubs, so tiles join seamlessly.
  t.moveTo(0, size);
  t.lineTo(size, 0);
  t.moveTo(-size / 2, size / 2);
  t.lineTo(size / 2, -size / 2);
  t.moveTo(size / 2, size * 1.5);
  t.lineTo(size * 1.5, size / 2);
  t.stroke();
  return ctx.createPattern(tile, "repeat") ?? fill;
}

export function overlayPlugin(
  get: () => OverlayData,
  colors: () => OverlayColors,
  drawn: (d: OverlayDrawn) => void,
): uPlot.Plugin {
  // Shared between the two hooks of one draw (drawClear runs first).
  const drawnState: OverlayDrawn = { scans: 0, findings: 0, throttled: 0 };
  return {
    hooks: {
      drawClear: (u: uPlot) => {
        const { scans, bands, now } = get();
        const c = colors();
        const ctx = u.ctx;
        const { left, top, width, height } = u.bbox;
        const [xMin, xMax] = [u.scales.x.min ?? 0, u.scales.x.max ?? 0];
        let count = 0;
        ctx.save();
        ctx.beginPath();
        ctx.rect(left, top, width, height);
        ctx.clip();
        for (const scan of scans) {
          const start = scan.start_ms / 1000;
          const end = (scan.end_ms ?? now) / 1000;
          if (end < xMin || start > xMax) continue;
          // Keep very short scans visible as at least a 2 px band.
          const [x0, x1] = span(u, scan.start_ms, scan.end_ms ?? now, 2);
          ctx.fillStyle = c.scan;
          ctx.fillRect(x0, top, x1 - x0, height);
          ctx.fillStyle = c.scanEdge;
          ctx.fillRect(x0, top, 1, height);
          count += 1;
        }
        let throttled = 0;
        if (bands.length > 0) {
          const pattern = hatch(ctx, c.throttle, c.throttleHatch);
          for (const band of bands) {
            if (band.end_ms / 1000 < xMin || band.start_ms / 1000 > xMax) continue;
            const [x0, x1] = span(u, band.start_ms, band.end_ms, 3);
            ctx.fillStyle = pattern;
            ctx.fillRect(x0, top, x1 - x0, height);
            throttled += 1;
          }
        }
        ctx.restore();
        drawnState.scans = count;
        drawnState.throttled = throttled;
      },
      draw: (u: uPlot) => {
        const { findings } = get();
        const c = colors();
        const ctx = u.ctx;
        const { left, top, width, height } = u.bbox;
        const [xMin, xMax] = [u.scales.x.min ?? 0, u.scales.x.max ?? 0];
        const size = 5 * devicePixelRatio;
        const y = top + height - 1;
        let count = 0;
        ctx.save();
        ctx.beginPath();
        ctx.rect(left - size, top, width + 2 * size, height);
        ctx.clip();
        for (const f of findings) {
          const t = f.ts_ms / 1000;
          if (t < xMin || t > xMax) continue;
          const x = u.valToPos(t, "x", true);
          ctx.fillStyle = c.severity[f.severity] ?? c.severity.info ?? "#888";
          ctx.beginPath();
          ctx.moveTo(x, y - size * 1.6);
          ctx.lineTo(x - size, y);
          ctx.lineTo(x + size, y);
          ctx.closePath();
          ctx.fill();
          count += 1;
        }
        ctx.restore();
        drawnState.findings = count;
        drawn({ ...drawnState });
      },
    },
  };
}
