// uPlot plugin drawing security overlays on a time chart: scan windows as
// shaded regions behind the series, new findings as markers along the bottom.

import type uPlot from "uplot";
import type { FindingMark, ScanWindow } from "./types";

export interface OverlayData {
  scans: ScanWindow[];
  findings: FindingMark[];
  now: number;
}

export interface OverlayColors {
  scan: string;
  scanEdge: string;
  severity: Record<string, string>;
}

/** What the last draw put on the canvas; the page exposes it for tests and the legend. */
export interface OverlayDrawn {
  scans: number;
  findings: number;
}

export function overlayPlugin(
  get: () => OverlayData,
  colors: () => OverlayColors,
  drawn: (d: OverlayDrawn) => void,
): uPlot.Plugin {
  // Shared between the two hooks of one draw (drawClear runs first).
  const drawnState: OverlayDrawn = { scans: 0, findings: 0 };
  return {
    hooks: {
      drawClear: (u: uPlot) => {
        const { scans, now } = get();
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
          let x0 = u.valToPos(start, "x", true);
          let x1 = u.valToPos(end, "x", true);
          // Keep very short scans visible as at least a 2 px band.
          if (x1 - x0 < 2) {
            x0 -= 1;
            x1 = x0 + 2;
          }
          ctx.fillStyle = c.scan;
          ctx.fillRect(x0, top, x1 - x0, height);
          ctx.fillStyle = c.scanEdge;
          ctx.fillRect(x0, top, 1, height);
          count += 1;
        }
        ctx.restore();
        drawnState.scans = count;
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
