// Exports: any table as CSV or JSON, any chart as PNG, saved by the browser.

export type Cell = string | number | boolean | null | undefined;

export interface Column<T> {
  /** The header of the column in the CSV. */
  header: string;
  /** The cell of a row. */
  value: (row: T) => Cell;
}

/** One CSV field: quoted when it holds a comma, quote or line break (RFC 4180). */
export function csvField(value: Cell): string {
  if (value === null || value === undefined) return "";
  let text = String(value);
  // A leading =, +, - or @ makes spreadsheets run the cell as a formula: keep it text.
  if (/^[=+\-@\t\r]/.test(text) && typeof value === "string") text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Rows as CSV text with a header line, CRLF line ends. */
export function toCSV<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const lines = [columns.map((c) => csvField(c.header)).join(",")];
  for (const row of rows) lines.push(columns.map((c) => csvField(c.value(row))).join(","));
  return lines.join("\r\n") + "\r\n";
}

/** A file name for an export: "secperf-findings-2026-12-07T10-15-00.csv". */
export function exportName(what: string, extension: string, now: Date = new Date()): string {
  const stamp = now.toISOString().slice(0, 19).replace(/:/g, "-");
  const safe = what.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") || "export";
  return `secperf-${safe}-${stamp}.${extension}`;
}

/** Have the browser save a blob under a name. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  // Revoke after the click has been handled; the download keeps its own reference.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

export function saveCSV<T>(what: string, rows: readonly T[], columns: readonly Column<T>[]): void {
  saveBlob(new Blob([toCSV(rows, columns)], { type: "text/csv;charset=utf-8" }), exportName(what, "csv"));
}

export function saveJSON(what: string, data: unknown): void {
  saveBlob(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }), exportName(what, "json"));
}

/**
 * A chart as PNG: its canvas drawn on the page background (a transparent PNG
 * is unreadable in the other theme), then saved.
 */
export function saveCanvasPNG(what: string, canvas: HTMLCanvasElement): void {
  const out = document.createElement("canvas");
  out.width = canvas.width;
  out.height = canvas.height;
  const ctx = out.getContext("2d");
  if (!ctx) return;
  ctx.fillStyle = getComputedStyle(document.body).backgroundColor || "#ffffff";
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.drawImage(canvas, 0, 0);
  out.toBlob((blob) => {
    if (blob) saveBlob(blob, exportName(what, "png"));
  }, "image/png");
}
